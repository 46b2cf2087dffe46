"""The pairs table's filters."""

from urllib.parse import urlencode

from django import forms

from annotation.models import PairConsensus
from annotation.pairs.selectors import PAIR_SORTS, PairFilters


class PairFilterForm(forms.Form):
    """The pairs table's search, filters and sort, read from the query string (the page and
    the API read the same parameters)."""

    q = forms.CharField(required=False, max_length=500, strip=True, label="Search")
    source = forms.CharField(required=False, max_length=200)
    external_id = forms.CharField(required=False, max_length=255)
    # Read as typed (true/false, 1/0): the select widget of NullBooleanField has its own codes.
    labelled = forms.NullBooleanField(required=False, widget=forms.TextInput)
    difficulty = forms.MultipleChoiceField(required=False, choices=PairConsensus.Difficulty.choices)
    contested = forms.NullBooleanField(required=False, widget=forms.TextInput)
    gold = forms.NullBooleanField(required=False, widget=forms.TextInput)
    decided = forms.NullBooleanField(required=False, widget=forms.TextInput)
    sort = forms.ChoiceField(
        required=False, choices=[(name, label) for name, (label, _) in PAIR_SORTS.items()]
    )

    def filters(self) -> PairFilters:
        data = self.cleaned_data
        return PairFilters(
            search=data["q"], source=data["source"] or None, external_id=data["external_id"],
            labelled=data["labelled"], difficulty=tuple(data["difficulty"]),
            contested=data["contested"], gold=data["gold"], decided=data["decided"],
            sort=data["sort"] or "id",
        )  # fmt: skip

    def query(self) -> str:
        """The valid, non-empty parameters as a query string, carried into page links and
        review pages so that they keep to the same pairs."""
        if not self.is_valid():
            return ""
        pairs = []
        for name, value in self.cleaned_data.items():
            for item in value if isinstance(value, list) else [value]:
                if item not in (None, ""):
                    pairs.append((name, str(item).lower() if isinstance(item, bool) else item))
        return urlencode(pairs)
