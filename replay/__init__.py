"""Kappa replay: the archive, in event-time order, through the same topology as the stream.

correct  recompute final windows in a range and write them over the live results
rebuild  build namespace v{N+1} from the archive, continue from Kafka, switch readers
"""
