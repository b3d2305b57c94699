"""Per-language function-word tables: where a line or cue break hurts reading, as data.

The Netflix guide's line-break rules: never separate an article from its noun, a preposition
from its object, a subject pronoun from its verb, an auxiliary from its verb or a verb from its
negation; break after punctuation and before conjunctions. Without a tagger, these are read off
the word *before* a break (articles, determiners, prepositions, pronouns, auxiliaries: they
bind to what follows) and the word *after* it (negations bind to what precedes; conjunctions
start a new phrase). First + last name (two capitalised words, the first not starting a
sentence) is detected by case in the engine. Lower-case forms; apostrophe forms keep their
apostrophe (``l'``, ``d'``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import FrozenSet, Mapping


def _set(text: str) -> FrozenSet[str]:
    return frozenset(text.split())


# Each language: binds_next (a break after it is bad), binds_previous (a break before it is bad),
# starts_phrase (a break before it is good).
_TABLES = {
    "en": dict(
        binds_next="a an the this that these those my your his her its our their some any no every each "
                   "of to in on at by for with from into onto about over under after before between through "
                   "during without within against among upon "
                   "i you he she we they it "
                   "is am are was were be been being has have had do does did will would shall should can "
                   "could may might must "
                   "mr mrs ms dr",
        binds_previous="not n't",
        starts_phrase="and but or nor so yet because although though while whereas if unless until when "
                      "where which who whom whose that than",
    ),
    "de": dict(
        binds_next="der die das den dem des ein eine einen einem einer eines kein keine keinen keinem "
                   "mein meine dein deine sein seine ihr ihre unser unsere euer eure "
                   "in an auf aus bei mit nach von vor zu zum zur über unter durch für gegen ohne um "
                   "zwischen hinter neben seit "
                   "ich du er sie es wir ihr "
                   "bin bist ist sind seid war waren hat habe hast haben hatte hatten wird werden wurde "
                   "kann können muss müssen soll sollen will wollen darf dürfen",
        binds_previous="nicht nie",
        starts_phrase="und aber oder denn sondern weil dass ob wenn als obwohl während damit bevor nachdem",
    ),
    "fr": dict(
        binds_next="le la les l' un une des du de d' au aux ce cet cette ces mon ma mes ton ta tes son sa ses "
                   "notre nos votre vos leur leurs "
                   "à dans en sur sous avec sans pour par chez entre vers contre depuis pendant "
                   "je j' tu il elle on nous vous ils elles "
                   "ne n' est suis es sommes êtes sont était ai as a avons avez ont avait va vais vont "
                   "peut peux doit dois",
        binds_previous="pas plus jamais rien",
        starts_phrase="et mais ou donc car parce que qui quand si lorsque puisque comme",
    ),
    "es": dict(
        binds_next="el la los las un una unos unas lo al del este esta estos estas ese esa mi mis tu tus su "
                   "sus nuestro nuestra "
                   "a de en con sin por para sobre entre hacia desde hasta contra bajo "
                   "yo tú él ella nosotros vosotros ellos ellas "
                   "no es soy eres somos son era fue está estoy están ha he has han había hay va voy van "
                   "puede puedo debe",
        binds_previous="",
        starts_phrase="y e pero o u ni porque aunque cuando si que como mientras donde",
    ),
    "it": dict(
        binds_next="il lo la i gli le un uno una un' l' del dello della dei degli delle al allo alla ai agli "
                   "alle questo questa quel quella mio mia tuo tua suo sua nostro nostra "
                   "di a da in con su per tra fra senza verso "
                   "io tu lui lei noi voi loro "
                   "non è sono sei siamo siete era ho hai ha abbiamo avete hanno può posso deve devo",
        binds_previous="",
        starts_phrase="e ed ma o oppure perché però quando se che come mentre dove",
    ),
    "pt": dict(
        binds_next="o a os as um uma uns umas ao aos do da dos das no na nos nas este esta esse essa meu "
                   "minha teu tua seu sua nosso nossa "
                   "de em com sem por para sobre entre até contra desde "
                   "eu tu ele ela nós vós eles elas "
                   "não é sou és somos são era foi está estou estão tem tenho têm há vai vou vão pode "
                   "posso deve",
        binds_previous="",
        starts_phrase="e mas ou nem porque embora quando se que como enquanto onde",
    ),
    "nl": dict(
        binds_next="de het een deze dit die dat mijn jouw zijn haar ons onze hun "
                   "in op aan bij met naar van voor uit over onder door tegen zonder tussen tot sinds "
                   "ik jij je hij zij ze wij we jullie "
                   "ben bent is zijn was waren heb hebt heeft hebben had wordt worden werd kan kunnen "
                   "moet moeten zal zullen wil willen",
        binds_previous="niet nooit",
        starts_phrase="en maar of want omdat dat als toen hoewel terwijl zodat",
    ),
}


class FunctionWords:
    """The three sets of one language (all empty for a language without a table)."""

    def __init__(self, binds_next: str = "", binds_previous: str = "", starts_phrase: str = ""):
        self.binds_next = _set(binds_next)
        self.binds_previous = _set(binds_previous)
        self.starts_phrase = _set(starts_phrase)


TABLES: Mapping[str, FunctionWords] = MappingProxyType({lang: FunctionWords(**t) for lang, t in _TABLES.items()})
_NONE = FunctionWords()


def function_words(language: str) -> FunctionWords:
    """The table of ``language`` (ISO 639-1); a language without one gets empty sets, so only
    punctuation, names and timing guide its breaks."""
    return TABLES.get((language or "").split("-")[0].lower(), _NONE)
