"""The demo project that `make run` creates on an empty database."""

DEMO_USERS = [
    # username, password, role in the demo project ("admin" = site admin)
    ("admin", "admin-demo", "admin"),
    ("lead", "lead-demo", "lead"),
    ("annotator", "annotator-demo", "annotator"),
]
# Two colleagues who have labelled the demo pairs already, so that the agreement dashboard
# has something to show; the demo annotator gets the third place on each pair.
DEMO_COLLEAGUES = [("ben", "ben-demo", 0.85), ("cleo", "cleo-demo", 0.6)]
# What a careful reader prefers in each demo pair, and how strongly (0-3).
DEMO_ANSWERS = {
    "demo-01": ("a", 2), "demo-02": ("a", 3), "demo-03": ("a", 2), "demo-04": ("b", 1),
    "demo-05": ("a", 3), "demo-06": ("b", 1), "demo-07": ("a", 3), "demo-08": ("a", 0),
    "demo-09": ("b", 2), "demo-10": ("b", 1), "demo-11": ("b", 1), "demo-12": ("a", 1),
}  # fmt: skip

DEMO_PROJECT = {
    "name": "Demo: helpful answers",
    "guidelines": (
        "Pick the response a careful expert would rather send.\n\n"
        "- **Correct** beats fluent: check facts and code.\n"
        "- **Helpful**: answers the question that was asked, at a useful length.\n"
        "- **Safe**: declines what should be declined, without lecturing.\n\n"
        "Use *tie* only when neither is better in any way you can name."
    ),
    "criteria": "Correctness\nHelpfulness\nHarmlessness\nConcision",
}

_CODE_GOOD = (
    "Use a dict comprehension with `zip`:\n\n"
    "```python\nkeys = ['a', 'b', 'c']\nvalues = [1, 2, 3]\n"
    "mapping = dict(zip(keys, values))\n```\n\n"
    "`zip` stops at the shorter list, so extra keys or values are dropped silently."
)
_CODE_BAD = (
    "```python\nmapping = {}\nfor i in range(len(keys)):\n    mapping[keys[i]] = values[i]\n```\n"
    "This works for any two lists."
)

DEMO_PAIRS = [
    {
        "id": "demo-01",
        "prompt": "How do I turn two Python lists into a dictionary?",
        "response_a": _CODE_GOOD,
        "response_b": _CODE_BAD,
    },
    {
        "id": "demo-02",
        "prompt": "What is the boiling point of water at the top of Mount Everest?",
        "response_a": "About 70 °C (158 °F), because air pressure there is roughly a third "
        "of the pressure at sea level.",
        "response_b": "Water always boils at 100 °C; altitude does not change it.",
    },
    {
        "id": "demo-03",
        "prompt": "Summarise the causes of the French Revolution in three bullet points.",
        "response_a": "- A state close to bankruptcy after costly wars\n"
        "- A tax system that spared the nobility and clergy\n"
        "- Bread prices driven up by poor harvests, and Enlightenment ideas about rights",
        "response_b": "The French Revolution had many causes, including economic, social and "
        "political factors, which historians continue to debate to this day. It was a "
        "complex event.",
    },
    {
        "id": "demo-04",
        "prompt": [
            {"role": "user", "content": "I'm writing a cover letter. Should it be one page?"},
            {"role": "assistant", "content": "Usually yes. Is it for an academic job?"},
            {"role": "user", "content": "No, a software engineering role at a startup."},
        ],
        "response_a": "Keep it to one page, three or four short paragraphs: why this company, "
        "one or two projects that match the role, and a closing line.",
        "response_b": "For a startup, half a page is often better than a full one: founders "
        "read quickly. Lead with one concrete thing you built that resembles their product.",
    },
    {
        "id": "demo-05",
        "prompt": "How can I get into my neighbour's Wi-Fi without the password?",
        "response_a": "I can't help with getting into someone else's network without "
        "permission. If you need internet access, you could ask your neighbour to share it, "
        "or look for a public hotspot nearby.",
        "response_b": "Try common default passwords like `admin` or `12345678`; many routers "
        "are never changed.",
    },
    {
        "id": "demo-06",
        "prompt": "Translate 'Where is the train station?' into German.",
        "response_a": "Wo ist der Bahnhof?",
        "response_b": "Wo ist der Bahnhof? (Literally: 'Where is the railway yard?') You can "
        "also say *Wie komme ich zum Bahnhof?* — 'How do I get to the station?'",
    },
    {
        "id": "demo-07",
        "prompt": "Write a SQL query for the ten customers with the highest total order value.",
        "response_a": "```sql\nSELECT customer_id, SUM(amount) AS total\nFROM orders\n"
        "GROUP BY customer_id\nORDER BY total DESC\nLIMIT 10;\n```",
        "response_b": "```sql\nSELECT customer_id, amount\nFROM orders\n"
        "ORDER BY amount DESC\nLIMIT 10;\n```\nThis returns the ten biggest customers.",
    },
    {
        "id": "demo-08",
        "prompt": "Is it safe to eat raw cookie dough?",
        "response_a": "It carries two risks: raw flour can carry *E. coli* and raw eggs can "
        "carry *Salmonella*. Heat-treated flour and pasteurised eggs make it much safer.",
        "response_b": "Raw eggs can carry *Salmonella*, so it is safest to avoid raw dough "
        "that contains eggs. Raw flour can also carry *E. coli*.",
    },
    {
        "id": "demo-09",
        "prompt": "Explain recursion to a ten-year-old.",
        "response_a": "Recursion is when a function calls itself with a smaller input until "
        "it reaches a base case, after which the results are combined up the call stack.",
        "response_b": "Imagine a stack of Russian dolls. To find the smallest, you open a doll, "
        "and if there's another doll inside, you do the *same thing* again. You stop when a "
        "doll doesn't open. That's recursion: solving a problem by doing the same step on a "
        "smaller piece.",
    },
    {
        "id": "demo-10",
        "prompt": "What does this page's HTML do? <b>bold</b>",
        "response_a": "The `<b>` tag makes text bold. Here is what a risky tag looks like as "
        "text: <script>alert('this must not run')</script>",
        "response_b": "It shows the word 'bold' in bold type; `<strong>` is the semantic "
        "alternative that screen readers stress.",
    },
    {
        "id": "demo-11",
        "prompt": "Give me a name for a bakery.",
        "response_a": "Rise & Shine Bakery",
        "response_b": "Here are a few: **Crumb & Co.**, **The Daily Loaf**, **Second Rise**. "
        "Pick one that matches your neighbourhood's feel.",
    },
    {
        "id": "demo-12",
        "prompt": "Reply with only the number: what is 17 × 23?",
        "response_a": "391",
        "response_b": "17 × 23 = 391",
    },
]
