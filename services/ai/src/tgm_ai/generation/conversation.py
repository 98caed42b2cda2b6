"""`ai-analyze-conversation`: intent, sentiment, buying signals, objections, questions, a funnel stage
and a summary, by rules (`domain.analysis`); a chat model, when asked for, writes the summary. With
`remember`, the summary and what the user stated go into their memory."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tgm_contracts.commands.ai import AiAnalyzeConversation, AnalyzeConversationRequest, ConversationAnalysis
from tgm_runtime.routes import answers

from ..domain import analysis
from ..domain.text import shorten
from ..memory.service import MemoryService
from ..providers.base import ChatRequest
from ..providers.service import ProviderService


@dataclass
class ConversationAnalyst:
    providers: ProviderService
    memory: MemoryService

    @answers(AiAnalyzeConversation)
    async def analyze(self, req: AnalyzeConversationRequest) -> ConversationAnalysis:
        turns: list[tuple[str, str]] = [(t.role, t.content) for t in req.messages if t.role != "system"] or [
            (t.role, t.content) for t in req.messages
        ]
        a = analysis.analyze(turns)
        provider_name = req.provider or "local"
        summary, model = a.summary, "local-rules"
        if provider_name in ("openai", "maiagent"):
            transcript = "\n".join(f"{r}: {c}" for r, c in turns[-40:])
            r = await self.providers.call(
                provider_name,
                ChatRequest(
                    message=f"Summarise this conversation in two sentences, in {a.language}:\n{transcript}",
                    max_chars=400,
                    language=a.language,
                ),
                None,
                "analyze-conversation",
            )
            summary, model = shorten(r.text.strip(), 400) or summary, r.model
        elif provider_name == "dmflow":
            provider_name = "local"  # a flow bot cannot summarise; the rules do
        if req.remember and req.account_id and req.user_id:
            m = await self.memory.get(req.account_id, req.user_id)
            m.summary = summary
            for _, text in turns:
                await self.memory.learn(m, text)
            await self.memory.put(m)
        return ConversationAnalysis.model_validate(
            {
                **asdict(a),
                "stage_suggestion": a.stage,
                "summary": summary,
                "provider": provider_name,
                "model": model,
            }
        )
