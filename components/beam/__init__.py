"""The Beam patch-dataset writer: sources -> patch-pair records (the transform), the dataset
written and finalised on any Beam file system, Beam's file systems behind imagesr's
file-system protocol, and the two patches of Beam's internals."""
