"""The core: what every stage must do identically, with numpy, Pillow and ffmpeg only (no
Keras, TensorFlow, JAX, Beam or TFX): media decode/encode, the MATLAB-exact bicubic, the Scale
type, degradations, patch sampling and sources, the patch-pair record codec and the dataset
layout, Y-PSNR/SSIM and the SR protocol, one file-system layer (local and gs://), safe outputs,
errors, the shipped models and the built-in samples. docs/ARCHITECTURE.md names each concept's
home."""
