"""The network: torchvision backbones (``backbones``) and the classifier built on one (``classifier``)."""
