"""The data: class folders and negatives found, every file scanned through the API's decoder,
near-duplicates grouped, the split written as ``split.json``; the images as tensors, with the
training augmentation; and the synthetic sky set of the offline demo."""
