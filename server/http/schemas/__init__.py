"""The API described once: request models (bodies, queries), response models, field types."""
