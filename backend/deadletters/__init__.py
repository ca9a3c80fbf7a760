"""Dead letters after the fact: listing them, replaying them, counting what is pending."""
