"""What the model writes: plans, storyboards, scene code and fixes, the prompts, the model client, docs retrieval."""
