"""Model side of vitfleet: data sets, teacher training, decomposition (DeViT, ED-ViT), bundles."""
