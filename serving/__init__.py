"""Inference without the training code: the exported SavedModel and what uses it.

    metadata.py   metadata.json: class names, sizes and the face framing (the one reader and writer)
    export.py     the SavedModel's signatures, all preprocessing inside
    predictor.py  Predictor: photos in, one record per face out, batched; faces in, probabilities out
    inputs.py     what Predictor.predict accepts (paths, URLs, bytes, PIL images, numpy arrays)
    photos.py     files, folders and URLs -> RGB, with clear errors
    video.py      videos: sampled frames, faces tracked by box overlap, one record per track
    report.py     records, and the same as a table, CSV or JSON
    annotate.py   boxes and labels drawn on a photo
    web.py        the upload page and the JSON API     tflite.py     TFLite conversion and agreement

Faces are found and framed by input_pipeline/faces (the build's own detector and canonical
crop) and cropped with input_pipeline/preprocess.py, as training and evaluation do.
Nothing here imports training/ (tests/test_layout.py).
"""
