"""engage: self-hosted omnichannel engagement and conversational commerce for online shops."""

__version__ = "0.1.0"
