"""Decoding user files into arrays the models take."""
