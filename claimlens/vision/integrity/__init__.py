"""Photo integrity (pure computer vision, no services): re-photographed screens and printouts, screenshots,
copy-move / splice / in-paint cues, and JPEG-container forensics.

Modules:

* :mod:`.jpeg_forensics` - header facts read from the original bytes at decode time (quantisation tables,
  APP segments, the EXIF thumbnail) and what they say (IJG-equivalent quality, thumbnail vs main image).
* :mod:`.recapture` - photo-of-a-screen / photo-of-a-printout score and screenshot score, with evidence.
* :mod:`.tamper` - copy-move localisation and splice / in-paint cues, with heatmaps.

This package's ``__init__`` imports nothing on purpose: :mod:`claimlens.vision.decode` imports
:mod:`.jpeg_forensics` while it is itself being imported.
"""
