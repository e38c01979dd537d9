"""Speaker diarization: who spoke when, put onto a transcript's words and segments.

Offline and CPU-friendly: WebRTC's VAD, resemblyzer's VoiceEncoder (weights inside its
wheel) over 1.5 s windows of speech, agglomerative clustering with the speaker count
estimated by silhouette. Entry point: `pipeline.diarization.diarize.diarize`; the encoder
comes from `pipeline.diarization.encoder.load_encoder` (once per process).
"""
