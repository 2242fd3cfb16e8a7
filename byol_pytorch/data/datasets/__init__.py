"""Map-style datasets: folders and rows of photos (one shared decode-and-skip), random images, digits."""
