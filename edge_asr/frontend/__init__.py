"""The audio front end: audio I/O and its checks (`audio`), log-mel and MFCC features
(`features`), and the streaming front end that gives the same frames chunk by chunk
(`streaming`). numpy, soundfile and soxr only: it runs on the board too."""
