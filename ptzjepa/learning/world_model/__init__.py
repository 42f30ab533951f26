"""The world model: ViT encoders, the JEPA predictor, masks and its update."""
