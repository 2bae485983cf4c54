"""seqgen-course: the package the course notebooks import (data, models, the training loop, checks).

Modules follow the lecture: text prediction (`text`, `char_lm`, notebook 01), handwriting prediction and
synthesis (`handwriting`, notebooks 02-03), gated recurrent units on music and speech (`cells`, `music`,
`speech`, notebook 04), the HiFi-GAN vocoder (`hifigan`, notebook 05); the shared pieces `runtime`
(profile, device, seeds, folders), `train` (the training loop, checkpoints), `results`, `plots`,
`errors`, `checks` (homework checkers) and `pretrained` (the shipped models and their cards).
"""

__version__ = "0.1.0"
