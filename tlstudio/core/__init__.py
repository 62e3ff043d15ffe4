"""The studio's core: data, backbones, freezing, training, evaluation, export. Never imports Qt."""
