"""Metric geometry from single photos: scale references, ground line, heights of marks, flood lines.

Pure numpy/OpenCV (the plate localiser's ONNX model is the only model used). See ``docs/heights.md``.
"""

from claimlens.vision.geometry.measure import Box, Measurement, measure
from claimlens.vision.geometry.references import flood_level, tyre_diameter_mm

__all__ = ["Box", "Measurement", "flood_level", "measure", "tyre_diameter_mm"]
