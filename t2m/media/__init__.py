"""Media work: probing, composing, thumbnails, subtitles and narration, the untrusted parts in a media jail."""
