"""Cameras: the PTZCamera protocol and the drivers that speak each brand's API."""

from ptzjepa.camera.base import PTZ, AxisRange, CameraError, Frame, PTZCamera, PTZLimits

__all__ = ["PTZ", "AxisRange", "CameraError", "Frame", "PTZCamera", "PTZLimits"]
