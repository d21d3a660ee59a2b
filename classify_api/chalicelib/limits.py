"""How much one /classify request may carry, and how long a batch may run.

API Gateway hands Lambda binary bodies base64-encoded (4/3 growth) inside a JSON event, and a
synchronous Lambda invocation is capped at 6 MB (6,291,456 bytes). 4,500,000 raw bytes become
6,000,000 base64 characters, which leaves ~290 kB for headers and the rest of the event. Bodies over
this are refused with 413 by the app itself; much larger ones never reach it (API Gateway or Lambda
answer 413/502 first). Through ``chalice local`` the same limit applies, so local behaviour matches
the deployed one.
"""

MAX_BODY_BYTES = 4_500_000

# Files per request (multipart parts or JSON "images" entries): each costs one decode + inference
# (~50 ms on one vCPU for a photo), so 16 stays far inside API Gateway's 29 s cut-off even for the
# largest allowed images.
MAX_FILES = 16

# Parts of any kind (text fields included) a multipart body may hold before it is refused.
MAX_PARTS = 64

# A batch stops before its next file once this much time has passed; the files left get an error
# entry each. The costliest legal image (a 50 MP PNG of a few hundred kB) takes 1-4 s to decode,
# so 16 of them could run past API Gateway's 29 s cut-off; with this budget a request ends within
# ~15 s + one image, inside the 28 s Lambda timeout, with every finished answer kept.
BATCH_SECONDS = 15.0
