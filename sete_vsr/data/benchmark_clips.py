"""The test clips of the evaluation sets named by clip, which training leaves out unless told otherwise.

Plain names, no torch: the training datasets and the evaluation layouts both read them from here.
"""

REDS4_CLIPS = ("000", "011", "015", "020")
VID4_CLIPS = ("calendar", "city", "foliage", "walk")
EVALUATION_CLIPS = REDS4_CLIPS + VID4_CLIPS
