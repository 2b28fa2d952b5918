"""MONAI dictionary transforms: volume loading, intensity, 3D->2D slicing, model preprocessing, boxes, slices->volume."""
