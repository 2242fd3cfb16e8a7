"""BYOL's two views cropped in the loader: the crops and their draws, and JPEGs decoded on the device."""
