"""seqgen-course: the package the course notebooks import (data, models, the training loop, checks).

Modules follow the lecture: text prediction (`text`, `char_lm`), handwriting (`handwriting`),
with the shared pieces `runtime`, `train`, `results`, `plots`, `cells` and `checks`.
"""

__version__ = "0.1.0"
