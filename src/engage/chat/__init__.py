"""The chat stage of the loop: the shop's Rasa bot, run from its own environment (`engage.chat.rasa`),
engage's custom actions (`actions`, served by `action_server`) over `ChatShop` (`shop`), the SMS relay to
Rasa (`sms_relay`), and the reader that turns Rasa's broker events into engage events (`rasa_events`)."""
