//! Made-up movie titles for synthetic releases.

use super::SynthMovie;
use super::{DECADE_WEIGHTS, GENRES, GENRE_SHARE, NO_GENRES_SHARE, NO_YEAR_SHARE};
use rand::rngs::SmallRng;
use rand::Rng;

const ADJECTIVES: &str = "Quiet Silent Broken Golden Hidden Last Lost Dark Bright Wild Cold \
    Burning Crimson Empty Endless Falling Forgotten Frozen Gentle Glass Hollow Iron Little \
    Lonely Midnight Missing Northern Painted Perfect Restless Secret Savage Shattered \
    Sleeping Southern Stolen Strange Sweet Twisted Velvet Wicked Winter Young Brave Blue Red \
    Black White Green Silver Distant Electric Eternal Fading Final First Hungry Invisible \
    Long Lucky Mad Naked Narrow New Old Open Pale Private Rising Rough Sacred Second Small \
    Steel Still Sudden Summer Tender Thin True Wandering Wounded Bitter Blind Careless Deep \
    Double Dusty Fearless Free Gray Great Heavy High Holy Honest Late Loud Mighty Modern \
    Mystic Nameless Noble Ordinary Proud Quick Rebel Royal Scarlet Short Simple Sinister \
    Stone Stormy Sunny Tall Violent Wooden Crooked Desperate Dangerous Beautiful Deadly \
    Fatal Happy Angry Innocent Guilty Magic Hot Sleepless Borrowed Silken Ashen Amber Wistful";
const NOUNS: &str = "Harbor River City Night Road House Heart Garden Mountain Island Sky \
    Storm Shadow Dream Kingdom Letter Mirror Witness Stranger Horizon Journey Promise Secret \
    Summer Winter Train Bridge Station Circle Crown Door Empire Fire Forest Game Ghost Girl \
    Boy Hunter King Queen Knife Lake Light Line Machine Moon Ocean Prince Rain Room Sea \
    Soldier Song Star Stone Sun Tower Valley Voice War Wave Wind Wolf World Angel Artist \
    Bandit Baron Captain Child Detective Doctor Dragon Driver Father Mother Sister Brother \
    Daughter Son Friend Lover Widow Thief Spy Sheriff Ranger Pilot Sailor Dancer Singer \
    Painter Poet Judge Lawyer Teacher Witch Wizard Monster Vampire Zombie Robot Planet \
    Galaxy Signal Code Protocol Sequence Affair Ballad Chronicle Legend Story Tale Diary \
    Confession Conspiracy Escape Hunt Heist Mission Operation Revenge Return Rise Fall \
    Silence Summit Tide Border Frontier Desert Canyon Jungle Prairie Village Street Avenue \
    Hotel Motel Diner Castle Palace Prison Church School Hospital Factory Farm Ranch Circus \
    Carnival Theater Museum Library Market Airport Harvest Dawn Dusk Evening Morning \
    Holiday Wedding Funeral Birthday Party Reunion Festival Parade Season Year Century \
    Moment Hour Day Week Memory Fortune Chance Danger Trouble Justice Freedom Glory Honor \
    Truth Lies Love Fear Hope Faith Desire Passion Sorrow Rage Pride Mercy Grace Orchard \
    Lighthouse Compass Lantern Anchor Arrow Feather Blade Bullet Saddle Violin Piano Camera \
    Telegram Carousel Labyrinth Oasis Glacier Volcano Meadow Harvest Tunnel Cellar Attic";
const PLACES: &str = "North South East West Sea Desert Mountains City River Valley Sun \
    Moon Stars Night Dead Living Lost Forest Islands Wild Plains Coast Border Deep Dunes \
    Marsh Moors Highlands Lowlands Steppe Tundra Delta Bay Cliffs Heights Hills Woods";
const NAMES: &str = "Anna Max Lucy Jack Harry Sarah Charlie Emma Frank Grace Henry Iris \
    Jonah Kate Leo Maria Nina Oscar Paul Rosa Sam Tom Vera Walter Billy Danny Eddie Molly \
    Ruby Sonny Marlowe Clara Felix Hugo Ingrid Otto Mabel Rufus Stella Victor Wendy Abel \
    Beatrice Cyrus Delilah Ezra Flora Gus Hazel";
/// Original-language titles: `(article, words)`; the article moves to the end as in
/// MovieLens (`Port tranquille, Le`).
const FOREIGN: &[(&str, &str)] = &[
    ("Le", "Port tranquille"),
    ("La", "Nuit blanche"),
    ("Les", "Enfants du paradis perdu"),
    ("L'", "Été dernier"),
    ("La", "Rivière noire"),
    ("Le", "Jardin secret"),
    ("El", "Camino del sur"),
    ("La", "Casa roja"),
    ("Los", "Años perdidos"),
    ("Las", "Olas del mar"),
    ("Il", "Ritorno del re"),
    ("La", "Strada bianca"),
    ("Der", "Stille Hafen"),
    ("Die", "Letzte Reise"),
    ("Das", "Weiße Haus am See"),
    ("", "Straße der Träume"),
    ("", "Mañana será otro día"),
    ("", "Après la pluie"),
    ("", "Hjärtats röst"),
    ("", "Kaze no tani"),
    ("", "Zhong guo meng"),
    ("", "Smultronstället i norr"),
];

fn words(list: &'static str) -> Vec<&'static str> {
    list.split_whitespace().collect()
}

fn pick<'a>(rng: &mut SmallRng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// `The X` spelled the MovieLens way: `X, The`.
fn with_article(article: &str, rest: &str) -> String {
    if article.is_empty() {
        rest.to_string()
    } else {
        format!("{rest}, {article}")
    }
}

pub(super) fn movies(n: usize, rng: &mut SmallRng) -> Vec<SynthMovie> {
    let adjectives = words(ADJECTIVES);
    let nouns = words(NOUNS);
    let places = words(PLACES);
    let names = words(NAMES);
    let mut bases: Vec<String> = Vec::new();
    let mut movie_id = 0u32;
    (0..n)
        .map(|k| {
            movie_id += if rng.random_bool(0.45) {
                1
            } else {
                rng.random_range(2..=8)
            };
            // (English title with its article, for sequels; MovieLens spelling)
            let (article, base) = match rng.random_range(0..100) {
                0..20 => (
                    "",
                    format!("{} {}", pick(rng, &adjectives), pick(rng, &nouns)),
                ),
                20..32 => (
                    "The",
                    format!("{} {}", pick(rng, &adjectives), pick(rng, &nouns)),
                ),
                32..42 => (
                    "",
                    format!("{} of the {}", pick(rng, &nouns), pick(rng, &places)),
                ),
                42..48 => (
                    "The",
                    format!("{} of {}", pick(rng, &nouns), pick(rng, &names)),
                ),
                48..56 => ("", format!("{}'s {}", pick(rng, &names), pick(rng, &nouns))),
                56..64 => ("", pick(rng, &nouns).to_string()),
                64..70 => ("The", pick(rng, &nouns).to_string()),
                70..76 => (
                    "",
                    format!(
                        "{} of the {}",
                        format_args!("{} {}", pick(rng, &adjectives), pick(rng, &nouns)),
                        pick(rng, &places)
                    ),
                ),
                76..82 => (
                    "",
                    format!(
                        "{} {} {}",
                        pick(rng, &nouns),
                        if rng.random_bool(0.2) { "&" } else { "and" },
                        pick(rng, &nouns)
                    ),
                ),
                82..87 => (
                    "A",
                    format!("{} in the {}", pick(rng, &nouns), pick(rng, &nouns)),
                ),
                87..92 => (
                    "",
                    format!(
                        "{}: {} {}",
                        pick(rng, &nouns),
                        pick(rng, &adjectives),
                        pick(rng, &nouns)
                    ),
                ),
                92..96 => (
                    "",
                    format!(
                        "{} and the {} {}",
                        pick(rng, &names),
                        pick(rng, &adjectives),
                        pick(rng, &nouns)
                    ),
                ),
                _ if !bases.is_empty() => {
                    let earlier: &String = &bases[rng.random_range(0..bases.len())];
                    let number = rng.random_range(2..=4);
                    let sequel = match rng.random_range(0..3) {
                        0 => format!("{earlier} {number}"),
                        1 => format!("{earlier} {}", ["II", "III", "IV"][number - 2]),
                        _ => format!("{earlier}: Part {number}"),
                    };
                    ("", sequel)
                }
                _ => ("", pick(rng, &nouns).to_string()),
            };
            let english = if article.is_empty() {
                base.clone()
            } else {
                format!("{article} {base}")
            };
            if bases.len() < 5000 {
                bases.push(english);
            }
            let mut title = match base.split_once(": ") {
                // `The Crow: Wicked Prayer` is spelled `Crow, The: Wicked Prayer`.
                Some((main, subtitle)) if !article.is_empty() => {
                    format!("{}: {subtitle}", with_article(article, main))
                }
                _ => with_article(article, &base),
            };
            match rng.random_range(0..1000) {
                0..40 => {
                    let (a, rest) = FOREIGN[rng.random_range(0..FOREIGN.len())];
                    title.push_str(&format!(" ({})", with_article(a, rest)));
                }
                40..55 => {
                    let alias = format!("{} {}", pick(rng, &adjectives), pick(rng, &nouns));
                    title.push_str(&format!(" (a.k.a. {alias})"));
                }
                _ => {}
            }

            let year = (!rng.random_bool(NO_YEAR_SHARE)).then(|| {
                let mut x = rng.random::<f64>() * DECADE_WEIGHTS.iter().sum::<f64>();
                let mut decade = 0;
                while decade + 1 < DECADE_WEIGHTS.len() && x >= DECADE_WEIGHTS[decade] {
                    x -= DECADE_WEIGHTS[decade];
                    decade += 1;
                }
                let first = 1890 + 10 * decade as u16;
                let last = if decade + 1 == DECADE_WEIGHTS.len() {
                    2023
                } else {
                    first + 9
                };
                rng.random_range(first..=last)
            });
            if let Some(year) = year {
                title.push_str(&format!(" ({year})"));
            }

            let mut genres = 0u32;
            if !rng.random_bool(NO_GENRES_SHARE) {
                while genres == 0 {
                    for (g, share) in GENRE_SHARE.iter().enumerate() {
                        // Scaled down as the draw is repeated when it gives no genre.
                        if rng.random_bool(0.8 * share) {
                            genres |= 1 << g;
                        }
                    }
                }
            }
            debug_assert!(GENRES.len() == GENRE_SHARE.len());

            let k = k as u64;
            SynthMovie {
                movie_id,
                title,
                genres,
                year,
                imdb_id: (1 + (k * 7_919 + 35_000) % 9_999_991) as u32,
                tmdb_id: (!rng.random_bool(0.0015))
                    .then(|| (1 + (k * 104_729 + 12_345) % 15_485_863) as u32),
            }
        })
        .collect()
}

/// Tags by genre ([`GENRES`] order) and general ones, most common first.
const GENRE_TAGS: [&str; 19] = [
    "action|explosions|car chase|fight scenes|martial arts|guns|fast paced",
    "adventure|treasure hunt|quest|journey|exotic locations",
    "animation|pixar|anime|stop motion|hand-drawn|cartoon",
    "kids|family|children|coming of age|talking animals",
    "funny|comedy|hilarious|satire|dark comedy|quirky|witty|parody",
    "crime|heist|mafia|gangsters|police|detective|murder",
    "documentary|true story|history|nature|biography|music documentary",
    "drama|emotional|melancholic|slow|character study|tearjerker|family drama",
    "fantasy|magic|dragons|fairy tale|mythology|based on a book",
    "film noir|noir|femme fatale|black and white",
    "horror|gore|scary|zombies|vampires|haunted house|slasher|creepy",
    "imax|3d|visually stunning",
    "musical|singing|dancing|broadway|great soundtrack",
    "mystery|twist ending|whodunit|suspense|puzzle",
    "romance|love story|romantic|chick flick|love triangle",
    "sci-fi|space|time travel|aliens|dystopia|artificial intelligence|cyberpunk",
    "thriller|suspense|psychological|tense|paranoia|serial killer",
    "war|world war ii|vietnam|military|anti-war",
    "western|cowboys|gunfight|frontier|spaghetti western",
];
const GENERAL_TAGS: &str = "atmospheric|visually appealing|thought-provoking|great acting|\
    based on a book|cinematography|classic|overrated|underrated|boring|predictable|\
    beautiful|surreal|dialogue|soundtrack|good music|nudity|violence|dark|cult film|\
    bittersweet|philosophical|stylized|original|clever|intense|slow paced|long|short|remake|\
    sequel|franchise|imdb top 250|oscar (best picture)|bd-r|dvd|netflix|in netflix queue|\
    seen more than once|want to see again|must see|not funny|so bad it's good|\
    dark, gritty|funny, warm|sad, but good|\"masterpiece\"|criterion|directorial debut|\
    strong female lead|ensemble cast|nonlinear|narrated|social commentary|politics|\
    religion|music|sports|food|new york|paris|london|los angeles|1970s|1980s|1990s";

pub(super) type Vocabulary = (Vec<&'static str>, Vec<Vec<u16>>, Vec<u16>);

pub(super) fn tag_vocabulary() -> Vocabulary {
    let mut tags: Vec<&'static str> = Vec::new();
    let index = |tag: &'static str, tags: &mut Vec<&'static str>| -> u16 {
        match tags.iter().position(|t| *t == tag) {
            Some(i) => i as u16,
            None => {
                tags.push(tag);
                (tags.len() - 1) as u16
            }
        }
    };
    let genre_tags = GENRE_TAGS
        .iter()
        .map(|list| list.split('|').map(|t| index(t, &mut tags)).collect())
        .collect();
    let general = GENERAL_TAGS
        .split('|')
        .map(|t| index(t, &mut tags))
        .collect();
    (tags, genre_tags, general)
}
