"""What a stage gets: the node's context, its camera, its models, its training frames, retention."""
