"""The input pipeline of training and test time: image decoding (:mod:`.images`),
transforms (:mod:`.transforms`) and the P x K identity sampler (:mod:`.sampler`)."""
