"""A small built-in English corpus the generated tokenizers are trained on (no network, no data sets)."""

CORPUS = """\
The morning was cold and clear, and the river moved slowly under the old stone bridge.
A small boat drifted past the market, where people were buying bread, apples, cheese and fresh fish.
She asked the baker whether the shop would open early tomorrow, and he said it would open at seven.
Children ran along the path by the water, laughing, while their parents talked about the weather.
In the afternoon the clouds came in from the sea, and by evening it was raining hard across the valley.

How do I convert a model to run on my laptop? First, install the tools you need and choose a folder.
Then download the weights, convert them, and quantize them to four bits so that they use less memory.
The conversion takes a few minutes. When it is done, load the model and ask it a question.
If the answer looks strange, check the chat template, the tokenizer and the configuration file.
A good model card explains where the model came from, what license it has and how to use it.

User: What is the capital of France?
Assistant: The capital of France is Paris. It is known for its museums, its cafes and the river Seine.
User: Can you write a short poem about the sea?
Assistant: The sea is wide, the sea is deep, it sings the sailors off to sleep.
User: Thank you! Please explain what a neural network is in one sentence.
Assistant: A neural network is a program that learns patterns from examples by adjusting many small numbers.
User: What should I cook for dinner tonight?
Assistant: You could make a simple pasta with tomatoes, garlic, olive oil and a little fresh basil.
User: How many days are there in a leap year?
Assistant: There are three hundred and sixty six days in a leap year.

Language models predict the next word from the words that came before it. They are trained on large
amounts of text, and they learn grammar, facts and style along the way. Smaller models are faster and
need less memory, while larger models often write better answers. Quantization stores each weight with
fewer bits, which makes the model smaller and usually a little less accurate.

The library opened at nine, and the reading room was quiet except for the sound of pages turning.
An old man studied a map of the mountains, tracing the roads with his finger and making careful notes.
A student wrote an essay about history, science, music and art, and then checked every sentence twice.
The librarian smiled and said that the new books would arrive on Monday, together with the newspapers.
Outside, the wind was blowing through the trees, and the leaves were turning yellow, orange and red.

Good software is simple to use, easy to read and honest about its errors. When something fails, the
program should say what happened and what the user can do next. Tests prove that the behaviour is
correct, and documentation shows people how to get started. Keyboard shortcuts make common tasks quick,
and a clear screen layout helps people find what they are looking for without searching for long.

Numbers: one, two, three, four, five, six, seven, eight, nine, ten, eleven, twelve, twenty, hundred.
Days: Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday. Months: January, February, March,
April, May, June, July, August, September, October, November, December. Colours: red, green, blue,
yellow, black, white, purple, brown, grey. Animals: cat, dog, horse, bird, fish, mouse, rabbit, sheep.

Once upon a time, in a village near the forest, there lived a young girl who loved to tell stories.
Every night she sat by the fire and told her brothers about dragons, kings, ships and faraway islands.
One winter the snow was so deep that nobody could leave the village, so everyone came to hear her.
They listened for hours, and when spring arrived they said it had been the best winter of their lives.

Please summarize the following text. Translate this sentence into English. Answer the question briefly.
Explain the difference between a list and a dictionary in Python. Write a function that returns the sum
of two numbers. The function takes two arguments and returns their total. Here is an example of its use.
def add(a, b):
    return a + b
print(add(2, 3))
"""
