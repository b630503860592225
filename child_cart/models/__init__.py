"""The cart's trained models.

versions.py   ModelVersions: every kept version's weights on disk and its record in `models`
export.py     TFLite conversion, checked against Keras with LiteRT, for phones
signing.py    what a cart signs about a phone model (cartnet.phone_models), the signed fixture for the app's tests
"""
