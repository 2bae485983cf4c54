"""Online handwriting: the stroke format, data readers, mixture density output, the networks, and the
recognizer that reads strokes back to text (bidirectional LSTM + CTC)."""
