"""Damage forensics (#6): where the damaged parts are, and what they look like.

``detector`` locates damaged car parts (bonnet, bumper, trunk, door, fender, light, windshield) with the
ONNX model ``weights/damage_det.onnx``; other modules beside it analyse those regions.
"""
