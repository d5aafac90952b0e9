"""SAM 2.1 in our own PyTorch: modules, configs, checkpoints and predictors.

Import the submodules directly (`model.build`, `model.config`, ...); this package imports nothing
heavy on purpose.
"""
