"""Import already-labeled preference data (Hugging Face rows, OpenAssistant trees)."""
