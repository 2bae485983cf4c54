"""Online handwriting: the stroke format, data readers, mixture density output, the networks."""
