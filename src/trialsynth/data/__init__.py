"""Trial data: arm-level and contrast-level trials, readers, shipped datasets."""
