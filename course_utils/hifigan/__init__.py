"""HiFi-GAN (Kong, Kim and Bae 2020): a GAN vocoder from mel-spectrograms to waveforms.

`configs` (V1, V2, V3, SMALL; PAPER and SLIM discriminators), `mel` (the reference front end),
`generator`, `discriminators` (multi-period, multi-scale), `losses`, `training` (the GAN step, its checkpoints and exported files), `evaluate`, `study`
(training on from the shipped vocoder, compared) and `official` (the authors' published generators).
"""
