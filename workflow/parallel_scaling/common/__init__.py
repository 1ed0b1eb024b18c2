"""What the stages share to generate text, and nothing else: prompt sets (``prompts``), the decoding
settings both inference engines are given (``decoding``), one continuous stream through vLLM's engine
(``vllm_stream``) and an OpenAI-compatible endpoint as an engine (``served``, ``openai_client``), used
by prediction, translation and GRPO alike. How answers are judged is :mod:`parallel_scaling.scoring`,
what every job runs in is :mod:`parallel_scaling.jobs`, reading and writing data is
:mod:`parallel_scaling.dataio`. Light to import."""
