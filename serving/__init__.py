"""Inference without the training code: the exported SavedModel and what uses it.

    metadata.py   metadata.json: class names and sizes (the one reader and writer)
    export.py     the SavedModel's signatures, all preprocessing inside
    predictor.py  an export: faces in, probabilities out; photos in, one row per face out
    photos.py     any photo or URL -> RGB, with clear errors
    faces.py      face detection and the margin crop
    report.py     rows as a table, CSV or JSON        annotate.py   boxes and labels drawn on a photo
    web.py        the upload page                     tflite.py     TFLite conversion and agreement

Every path crops faces with input_pipeline/preprocess.py, as training and evaluation do.
Nothing here imports training/ (tests/test_layout.py).
"""
