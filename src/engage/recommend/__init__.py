"""The recommender: Personalize-class use cases over one catalog, learning from every channel's events."""
