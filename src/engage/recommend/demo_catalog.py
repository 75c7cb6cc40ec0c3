"""The demo shop's catalog: 2,500 products in 20 categories, generated from word lists written for engage.

    python -m engage.recommend.demo_catalog OUT.csv [--seed N]

Deterministic for a seed: the example workspace ships the output for the default seed as
`catalog/products.csv`, and a test regenerates it byte for byte. The categories are those the demo's
shoppers browse (`engage.demo.shoppers.CATEGORIES`, after the Retail Demo Store's) plus four more. Each
category has a few styles, each style its own nouns and price range; names join an adjective, a detail
(a material, a flavour, a genre…) and a noun, and descriptions are one sentence from the same words.
Products are dated over the two years before `CATALOG_DATE`, so the file does not depend on today.
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engage.recommend.catalog import Product, write_catalog

__all__ = ["CATALOG_DATE", "DEFAULT_SEED", "CATEGORY_NAMES", "demo_products", "main"]

CATALOG_DATE = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT_SEED = 7
IMAGE_URL = "https://shop.example/images/{id}.jpg"
PROMOTED_SHARE = 0.03
OUT_OF_STOCK_SHARE = 0.07
AGE = timedelta(days=730)


@dataclass(frozen=True)
class _Style:
    name: str
    nouns: tuple[str, ...]
    low: float
    high: float
    """Prices are drawn log-uniformly between `low` and `high`."""
    details: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    """The style's own details (materials…) and uses where the category's would not fit."""


@dataclass(frozen=True)
class _Category:
    name: str
    count: int
    adjectives: tuple[str, ...]
    details: tuple[str, ...]
    uses: tuple[str, ...]
    """How the description ends: `… {use}.`"""
    styles: tuple[_Style, ...]
    name_format: str = "{adjective} {detail} {noun}"
    description_format: str = "{a_adjective} {noun_lower} in {detail_lower}, {use}."


def _words(text: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(",") if word.strip())


def _style(name: str, nouns: str, low: float, high: float, details: str = "", uses: str = "") -> _Style:
    return _Style(name, _words(nouns), low, high, _words(details), _words(uses))


# fmt: off
_CATEGORIES = (
    _Category(
        "accessories", 120,
        _words("Classic, Everyday, Slim, Weekend, Heritage, Minimal, Urban, Compact, Vintage, Modern"),
        _words("Leather, Canvas, Suede, Wool, Waxed Cotton, Recycled Nylon, Cork, Felt"),
        _words("made to be carried every day, with room for the essentials, ageing well with use, "
               "sized for a busy week"),
        (_style("bags", "Tote, Backpack, Crossbody Bag, Messenger Bag, Duffel, Sling Bag", 25, 220),
         _style("wallets", "Wallet, Card Holder, Coin Purse, Passport Cover, Key Pouch", 12, 90),
         _style("belts", "Belt, Braided Belt, Reversible Belt, Dress Belt", 18, 85),
         _style("hats", "Beanie, Cap, Bucket Hat, Fedora, Sun Hat", 14, 70)),
    ),
    _Category(
        "apparel", 220,
        _words("Classic, Relaxed, Slim, Essential, Everyday, Lightweight, Cozy, Tailored, Vintage, Soft, "
               "Organic, Breezy"),
        _words("Cotton, Linen, Merino, Denim, Fleece, Jersey, Flannel, Corduroy, Cashmere, Chambray"),
        _words("cut for an easy fit, for cool evenings, made to last wash after wash, "
               "for layering through the seasons, easy to pair with almost anything"),
        (_style("tops", "T-Shirt, Henley, Polo, Blouse, Tank Top, Long-Sleeve Tee", 12, 60),
         _style("knitwear", "Sweater, Cardigan, Hoodie, Pullover, Turtleneck", 35, 160),
         _style("bottoms", "Jeans, Chinos, Shorts, Joggers, Skirt, Trousers", 25, 120),
         _style("outerwear", "Jacket, Overshirt, Vest, Coat, Shacket", 60, 280),
         _style("dresses", "Dress, Shirt Dress, Wrap Dress, Jumpsuit", 40, 180)),
    ),
    _Category(
        "beauty", 130,
        _words("Gentle, Daily, Hydrating, Nourishing, Soothing, Radiant, Fresh, Calming, Clarifying"),
        _words("Aloe, Rosewater, Shea, Green Tea, Oat, Citrus, Lavender, Argan, Cucumber, Jojoba"),
        _words("for every skin type, without added fragrance, for mornings and evenings, "
               "quick to absorb, in a refillable bottle"),
        (_style("skincare", "Face Cream, Serum, Cleanser, Toner, Eye Cream, Face Mask", 8, 75),
         _style("haircare", "Shampoo, Conditioner, Hair Oil, Hair Mask, Styling Cream", 6, 40),
         _style("bath", "Body Wash, Bath Salts, Body Lotion, Hand Soap, Body Scrub", 5, 35),
         _style("makeup", "Lip Balm, Tinted Moisturiser, Mascara, Blush, Lip Tint", 7, 45)),
        description_format="{a_adjective} {noun_lower} with {detail_lower}, {use}.",
    ),
    _Category(
        "books", 190,
        _words("Quiet, Last, Hidden, Silver, Long, Winter, Secret, Distant, Golden, Forgotten, Restless, "
               "Northern, Paper, Midnight"),
        _words("River, Lighthouse, Orchard, Harbour, Garden, Station, Mountain, Island, Library, Kitchen, "
               "Valley, Workshop"),
        _words("for a long weekend, that readers pass on to friends, in a sturdy paperback edition, "
               "with a new afterword, that rewards a second reading"),
        (_style("fiction", "Summer, Letters, Crossing, Promise, Return, Tides", 9, 28),
         _style("mystery", "Alibi, Case, Witness, Cipher, Vanishing, Key", 8, 26),
         _style("cookbooks", "Table, Recipes, Pantry, Feast, Bakes, Suppers", 15, 45),
         _style("children", "Adventure, Friends, Bedtime, Journey, Surprise, Picnic", 6, 20),
         _style("nonfiction", "Field Guide, History, Handbook, Atlas, Almanac, Notebook", 12, 40)),
        name_format="The {adjective} {detail} {noun}",
        description_format="A {style} title set around a {detail_lower}, {use}.",
    ),
    _Category(
        "electronics", 200,
        _words("Wireless, Compact, Portable, Smart, Pro, Ultra, Mini, Active, Studio, Travel"),
        _words("Bluetooth, 4K, USB-C, Wi-Fi, HDR, Dual-Band, Hi-Res, NFC"),
        _words("with a battery that lasts all day, paired in seconds, built for travel, "
               "with a two-year warranty, set up from your phone"),
        (_style("audio", "Headphones, Earbuds, Speaker, Soundbar, Turntable", 25, 350),
         _style("computing", "Laptop, Tablet, Monitor, Keyboard, Mouse, Docking Station", 25, 1800),
         _style("cameras", "Camera, Action Camera, Webcam, Tripod, Lens", 30, 1200),
         _style("chargers", "Power Bank, Charger, Cable, Charging Stand, Travel Adapter", 9, 90),
         _style("wearables", "Smartwatch, Fitness Band, Smart Ring, Sleep Tracker", 40, 450)),
        description_format="{a_adjective} {detail} {noun_lower}, {use}.",
    ),
    _Category(
        "footwear", 140,
        _words("Trail, City, Classic, Cushioned, Lightweight, Everyday, Weatherproof, Retro, Slip-On"),
        _words("Leather, Suede, Knit, Canvas, Mesh, Rubber, Nubuck, Wool"),
        _words("with a cushioned footbed, for long days on your feet, with a grippy sole, "
               "with no breaking in needed, in whole and half sizes"),
        (_style("sneakers", "Sneaker, Runner, Court Shoe, High-Top, Trainer", 45, 160),
         _style("boots", "Boot, Chelsea Boot, Hiking Boot, Rain Boot, Work Boot", 70, 260),
         _style("sandals", "Sandal, Slide, Flip-Flop, Espadrille", 18, 90),
         _style("formal", "Loafer, Oxford, Derby, Ballet Flat, Mule", 60, 220)),
    ),
    _Category(
        "furnishing", 100,
        _words("Mid-Century, Scandinavian, Rustic, Modular, Compact, Classic, Modern, Industrial"),
        _words("Oak, Walnut, Pine, Rattan, Velvet, Linen, Steel, Bamboo, Teak"),
        _words("assembled in under an hour, sized for small apartments, built to last for years, "
               "with a finish that resists scratches"),
        (_style("seating", "Armchair, Sofa, Dining Chair, Stool, Bench, Ottoman", 60, 1400),
         _style("tables", "Coffee Table, Dining Table, Side Table, Desk, Console Table", 70, 1100),
         _style("storage", "Bookshelf, Dresser, Sideboard, Wardrobe, Shoe Rack", 60, 900),
         _style("beds", "Bed Frame, Headboard, Daybed, Bunk Bed", 180, 1500)),
    ),
    _Category(
        "garden", 100,
        _words("Heavy-Duty, Ergonomic, Compact, Weatherproof, Classic, Raised, Self-Watering, Foldable"),
        _words("Steel, Cedar, Terracotta, Galvanised, Ash, Recycled Plastic, Stone, Bamboo"),
        _words("for balconies and big plots alike, ready for every season, "
               "with a comfortable grip, for a first vegetable patch"),
        (_style("planters", "Planter, Window Box, Raised Bed, Plant Stand, Hanging Basket", 12, 180),
         _style("tools", "Trowel, Pruner, Rake, Spade, Hoe, Hose Reel", 9, 85),
         _style("outdoor-living", "Bistro Set, Lounger, Fire Pit, Parasol, Garden Bench", 60, 900),
         _style("seeds", "Seed Kit, Bulb Set, Herb Kit, Compost Bin", 5, 60,
                "Recycled Plastic, Cedar, Bamboo, Galvanised")),
    ),
    _Category(
        "groceries", 110,
        _words("Organic, Small-Batch, Roasted, Wholesome, Artisan, Single-Origin, Stone-Ground, Wild"),
        _words("Hazelnut, Sea Salt, Dark Chocolate, Honey, Vanilla, Chilli, Lemon, Cinnamon, Almond"),
        _words("for the pantry shelf, packed by a family producer, ready in minutes, "
               "with no artificial flavours"),
        (_style("coffee-tea", "Coffee Beans, Ground Coffee, Green Tea, Black Tea, Herbal Tea", 6, 28),
         _style("snacks", "Granola, Crackers, Trail Mix, Chocolate Bar, Popcorn", 3, 14),
         _style("pantry", "Olive Oil, Pasta, Jam, Nut Butter, Hot Sauce, Spice Blend", 3, 25),
         _style("baking", "Flour, Baking Mix, Cocoa Powder, Maple Syrup", 4, 22)),
        name_format="{adjective} {detail} {noun}",
        description_format="{a_adjective} {noun_lower} with {detail_lower}, {use}.",
    ),
    _Category(
        "homedecor", 130,
        _words("Handmade, Woven, Minimal, Textured, Glazed, Botanical, Coastal, Nordic, Bohemian"),
        _words("Ceramic, Jute, Glass, Linen, Brass, Wool, Cotton, Marble, Paper"),
        _words("to bring warmth to a room, a thoughtful gift, in muted natural tones, "
               "made by small workshops"),
        (_style("textiles", "Throw, Cushion Cover, Rug, Curtain, Table Runner", 15, 240),
         _style("lighting", "Table Lamp, Floor Lamp, Pendant Light, String Lights, Lantern", 20, 260),
         _style("wall-art", "Print, Mirror, Wall Hanging, Clock, Frame", 15, 220),
         _style("accents", "Vase, Candle, Tray, Bowl, Bookends, Planter", 8, 80)),
    ),
    _Category(
        "housewares", 140,
        _words("Essential, Nonstick, Stackable, Professional, Everyday, Enamelled, Insulated, Compact"),
        _words("Stainless Steel, Cast Iron, Stoneware, Glass, Bamboo, Copper, Porcelain, Silicone"),
        _words("from oven to table, safe in the dishwasher, for weeknight cooking, "
               "stacking neatly away"),
        (_style("cookware", "Frying Pan, Saucepan, Dutch Oven, Wok, Baking Tray, Stockpot", 18, 260,
                "Stainless Steel, Cast Iron, Copper, Carbon Steel, Enamelled Steel"),
         _style("tableware", "Dinner Plate Set, Mug, Serving Bowl, Glass Set, Cutlery Set", 10, 120,
                "Stoneware, Porcelain, Glass, Stainless Steel, Bamboo"),
         _style("kitchen-tools", "Chef's Knife, Cutting Board, Whisk, Grater, Measuring Cups", 6, 130,
                "Stainless Steel, Bamboo, Olive Wood, Silicone, Copper"),
         _style("appliances", "Kettle, Toaster, Blender, Coffee Maker, Hand Mixer", 25, 320,
                "Stainless Steel, Glass, Copper, Porcelain"),
         _style("cleaning", "Broom, Storage Box, Laundry Basket, Dish Rack, Spray Bottle", 6, 60,
                "Bamboo, Recycled Plastic, Steel, Seagrass", "for a tidy home, for every room of the house")),
    ),
    _Category(
        "instruments", 70,
        _words("Student, Studio, Vintage, Concert, Travel, Acoustic, Electric, Deluxe"),
        _words("Maple, Rosewood, Mahogany, Spruce, Brass, Nickel, Birch"),
        _words("with a warm and clear tone, set up and ready to play, for first lessons and gigs, "
               "with a padded case"),
        (_style("strings", "Guitar, Ukulele, Violin, Bass, Mandolin", 70, 1300),
         _style("keys", "Keyboard, Digital Piano, Melodica, MIDI Controller", 60, 1400),
         _style("percussion", "Cajon, Snare Drum, Tambourine, Hand Drum, Practice Pad", 20, 450,
                "Birch, Maple, Mahogany, Brass"),
         _style("accessories", "String Set, Tuner, Strap, Music Stand, Capo", 6, 60)),
    ),
    _Category(
        "jewelry", 110,
        _words("Delicate, Classic, Hammered, Twisted, Minimal, Statement, Vintage, Stacking"),
        _words("Sterling Silver, Gold Vermeil, Rose Gold, Pearl, Opal, Turquoise, Onyx, Moonstone"),
        _words("to layer with other pieces, in a gift box, made to be worn every day, "
               "finished by hand"),
        (_style("necklaces", "Necklace, Pendant, Choker, Chain", 25, 320),
         _style("earrings", "Hoops, Studs, Drop Earrings, Ear Climbers", 18, 240),
         _style("rings", "Ring, Band, Signet Ring, Stacking Ring Set", 20, 380),
         _style("bracelets", "Bracelet, Bangle, Cuff, Charm Bracelet", 18, 260)),
    ),
    _Category(
        "office", 90,
        _words("Ergonomic, Minimal, Compact, Adjustable, Refillable, Dotted, Premium, Desk-Top"),
        _words("Recycled Paper, Aluminium, Walnut, Leather, Felt, Bamboo, Steel"),
        _words("for a tidy desk, for home and office, to keep notes in one place, "
               "made to work for hours"),
        (_style("stationery", "Notebook, Planner, Fountain Pen, Gel Pen Set, Sticky Notes", 3, 60,
                "Recycled Paper, Leather, Kraft Paper, Linen, Bamboo"),
         _style("desk", "Desk Organiser, Monitor Stand, Desk Mat, Lamp, Pen Cup", 12, 140,
                "Walnut, Aluminium, Felt, Bamboo, Steel"),
         _style("chairs", "Office Chair, Kneeling Chair, Footrest, Seat Cushion", 25, 650,
                "Mesh, Leather, Wool Felt, Memory Foam"),
         _style("storage", "File Box, Document Tray, Drawer Unit, Magazine Holder", 8, 180,
                "Kraft Paper, Steel, Walnut, Recycled Plastic")),
    ),
    _Category(
        "outdoors", 150,
        _words("Trail, Alpine, Ultralight, Rugged, Backcountry, Summit, Packable, All-Season, Coastal"),
        _words("Ripstop Nylon, Down, Merino, Titanium, Aluminium, Polyester, Canvas, Waxed Cotton"),
        _words("built for wet weekends, packing down small, for day hikes and long treks, "
               "tested on the trail"),
        (_style("camping", "Tent, Sleeping Bag, Sleeping Pad, Camp Stove, Camp Chair, Hammock", 25, 550),
         _style("hiking", "Daypack, Trekking Poles, Water Filter, Headlamp, Hydration Pack", 15, 220),
         _style("climbing", "Harness, Chalk Bag, Carabiner Set, Climbing Rope, Helmet", 12, 260,
                "Ripstop Nylon, Aluminium, Polyester, Canvas"),
         _style("outerwear", "Rain Shell, Down Jacket, Fleece, Softshell, Insulated Vest", 60, 420)),
    ),
    _Category(
        "pets", 90,
        _words("Cozy, Durable, Washable, Orthopaedic, Interactive, Sturdy, Reflective, Calming"),
        _words("Plush, Rope, Rubber, Canvas, Memory Foam, Nylon, Felt, Cotton"),
        _words("for dogs and cats of every size, tough enough for enthusiastic play, vet approved, "
               "easy to clean"),
        (_style("dogs", "Dog Bed, Leash, Harness, Chew Toy, Dog Treats, Collar", 6, 120),
         _style("cats", "Scratching Post, Cat Tree, Cat Toy, Litter Mat, Cat Treats", 5, 160,
                "Sisal, Felt, Plush, Canvas, Cotton"),
         _style("care", "Grooming Brush, Pet Shampoo, Food Bowl, Water Fountain, Travel Crate", 7, 140)),
    ),
    _Category(
        "seasonal", 60,
        _words("Festive, Twinkling, Handcrafted, Frosted, Golden, Cosy, Spooky, Spring"),
        _words("Glass, Felt, Pine, Paper, Wool, Wicker, Tin"),
        _words("to decorate for the holidays, to pack away for next year, a family tradition in the making, "
               "for a seasonal table"),
        (_style("holidays", "Ornament Set, Wreath, Garland, Advent Calendar, Tree Topper", 8, 90),
         _style("halloween", "Lantern, Costume, Candle Holder, Door Sign", 6, 60),
         _style("gifting", "Gift Wrap Set, Gift Box, Stocking, Greeting Card Pack", 4, 40)),
    ),
    _Category(
        "sports", 120,
        _words("Pro, Training, Competition, Lightweight, Adjustable, Sturdy, Performance, Indoor"),
        _words("Carbon, Rubber, Foam, Leather, Neoprene, Steel, Nylon, Cork"),
        _words("for training at home or in the gym, made for daily use, "
               "for beginners and regulars, with a carry bag"),
        (_style("fitness", "Dumbbell Set, Yoga Mat, Kettlebell, Resistance Bands, Jump Rope", 10, 240),
         _style("team-sports", "Football, Basketball, Volleyball, Shin Guards, Training Cones", 10, 80),
         _style("racket", "Tennis Racket, Badminton Set, Table Tennis Paddle, Squash Racket", 15, 220,
                "Carbon, Graphite, Aluminium, Cork"),
         _style("cycling", "Bike Helmet, Bike Light Set, Cycling Gloves, Bottle Cage, Bike Lock", 8, 160)),
    ),
    _Category(
        "tools", 100,
        _words("Cordless, Heavy-Duty, Precision, Compact, Professional, Magnetic, Folding, Multi"),
        _words("Chrome Vanadium, Hardened Steel, Fibreglass, Aluminium, Titanium, Carbon Steel, Cast Steel"),
        _words("for weekend projects and daily jobs, with a lifetime warranty, small enough for a drawer, "
               "in a sturdy case"),
        (_style("power-tools", "Drill, Impact Driver, Circular Saw, Sander, Jigsaw", 45, 350),
         _style("hand-tools", "Screwdriver Set, Hammer, Wrench Set, Pliers, Utility Knife", 8, 90),
         _style("measuring", "Tape Measure, Spirit Level, Laser Measure, Stud Finder", 8, 120),
         _style("storage", "Toolbox, Tool Bag, Parts Organiser, Work Bench", 18, 260)),
        description_format="{a_adjective} {noun_lower} made with {detail_lower}, {use}.",
    ),
    _Category(
        "toys", 130,
        _words("Wooden, Colourful, Classic, Creative, Magnetic, Musical, Pocket, Giant"),
        _words("Rainbow, Dinosaur, Space, Ocean, Jungle, Robot, Castle, Farm"),
        _words("for ages three and up, for open-ended play, built for small hands, "
               "for rainy afternoons"),
        (_style("building", "Block Set, Construction Kit, Marble Run, Tile Set", 15, 120),
         _style("games", "Board Game, Puzzle, Card Game, Memory Game", 9, 55),
         _style("plush", "Plush Toy, Puppet, Cuddly Bear, Soft Doll", 10, 45),
         _style("outdoor-play", "Kite, Scooter, Bubble Kit, Sandbox Set, Balance Bike", 10, 150)),
        description_format="{a_adjective} {detail_lower} {noun_lower}, {use}.",
    ),
)
# fmt: on

CATEGORY_NAMES = tuple(category.name for category in _CATEGORIES)


def demo_products(seed: int = DEFAULT_SEED) -> list[Product]:
    """The demo catalog for `seed`: products of each category in turn, ids `<category>-0001` on."""
    rng = random.Random(seed)
    products: list[Product] = []
    for category in _CATEGORIES:
        names: set[str] = set()
        for number in range(1, category.count + 1):
            products.append(_product(rng, category, number, names))
    return products


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engage.recommend.demo_catalog",
        description="Write the demo shop's generated catalog as a catalog/products.csv file.",
    )
    parser.add_argument("out", type=Path, help="the CSV file to write, e.g. catalog/products.csv")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"default {DEFAULT_SEED}")
    args = parser.parse_args(argv)
    products = demo_products(args.seed)
    write_catalog(products, args.out)
    print(f"wrote {len(products)} products in {len(CATEGORY_NAMES)} categories to {args.out}")
    return 0


def _product(rng: random.Random, category: _Category, number: int, taken: set[str]) -> Product:
    style = rng.choice(category.styles)
    for _ in range(100):  # a few repeats are drawn before every combination is used; names stay unique
        adjective, detail, noun = (
            rng.choice(category.adjectives),
            rng.choice(style.details or category.details),
            rng.choice(style.nouns),
        )
        name = category.name_format.format(adjective=adjective, detail=detail, noun=noun)
        if name not in taken:
            break
    taken.add(name)
    product_id = f"{category.name}-{number:04d}"
    description = category.description_format.format(
        a_adjective=_with_article(adjective.lower(), noun),
        noun_lower=noun.lower(),
        detail=detail,
        detail_lower=detail.lower(),
        style=style.name.replace("-", " "),
        use=rng.choice(style.uses or category.uses),
    )
    return Product(
        id=product_id,
        name=name,
        category=category.name,
        style=style.name,
        description=description,
        price=_price(rng, style),
        image_url=IMAGE_URL.format(id=product_id),
        stock=0 if rng.random() < OUT_OF_STOCK_SHARE else min(500, 1 + int(rng.expovariate(1 / 40))),
        promoted=rng.random() < PROMOTED_SHARE,
        created_at=CATALOG_DATE - timedelta(seconds=rng.randrange(int(AGE.total_seconds()))),
    )


def _price(rng: random.Random, style: _Style) -> float:
    """Log-uniform in the style's range, ending as shops price: .99 mostly, sometimes .49 or .00."""
    raw = math.exp(rng.uniform(math.log(style.low), math.log(style.high)))
    ending = rng.choices((0.99, 0.49, 0.0), weights=(7, 2, 1))[0]
    whole = max(1, round(raw))
    return round(whole - 1 + ending, 2) if ending else float(whole)


def _with_article(adjective: str, noun: str) -> str:
    """`adjective` opening a sentence about a `noun`: "A classic", "An everyday", "Wireless" (earbuds)."""
    if noun.endswith("s") and not noun.endswith("ss"):
        return adjective.capitalize()
    return f"{'An' if adjective[0] in 'aeiou' else 'A'} {adjective}"


if __name__ == "__main__":
    raise SystemExit(main())
