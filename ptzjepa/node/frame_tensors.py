"""A stored frame as the models read it: the image resized and normalised, the pose as a tensor.

The normalisation is ImageNet's per-channel mean and standard deviation, the convention of the
I-JEPA encoders; the training frames (ptzjepa.node.training_frames) apply the same on the device.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ptzjepa.storage.frames import FrameRecord

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def to_tensor(image: np.ndarray, size: int) -> torch.Tensor:
    """The whole frame, resized to size x size and normalised: [3, size, size] float32."""
    resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    array = (resized.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def pose_of(record: FrameRecord) -> torch.Tensor:
    return torch.tensor([record.ptz.pan, record.ptz.tilt, record.ptz.zoom], dtype=torch.float32)
