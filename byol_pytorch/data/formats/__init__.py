"""Item formats and decoding: where an item's image is, how it becomes a tensor, a decoded photo, a crop."""
