"""HiFi-GAN (Kong, Kim and Bae 2020): a GAN vocoder from mel-spectrograms to waveforms."""
