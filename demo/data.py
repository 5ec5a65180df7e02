"""Static tables for synthetic data: readings, places, municipalities, carriers, gift catalogues.

Every person and business here is fictional. Place names, postal-code areas, area codes and
local-government codes are real so that the data looks and validates like the real thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# --- Names -------------------------------------------------------------------------------
# (kanji, katakana reading, weight). Weights roughly follow how common each surname is.
# 髙橋, 山﨑 and 渡邉 use old forms that do not round-trip to CP932, as real exports contain.
SURNAMES: list[tuple[str, str, int]] = [
    ("佐藤", "サトウ", 40),
    ("鈴木", "スズキ", 36),
    ("高橋", "タカハシ", 28),
    ("髙橋", "タカハシ", 3),
    ("田中", "タナカ", 27),
    ("伊藤", "イトウ", 22),
    ("渡辺", "ワタナベ", 21),
    ("渡邉", "ワタナベ", 3),
    ("山本", "ヤマモト", 21),
    ("中村", "ナカムラ", 21),
    ("小林", "コバヤシ", 21),
    ("加藤", "カトウ", 17),
    ("吉田", "ヨシダ", 17),
    ("山田", "ヤマダ", 16),
    ("佐々木", "ササキ", 14),
    ("山口", "ヤマグチ", 13),
    ("松本", "マツモト", 13),
    ("井上", "イノウエ", 13),
    ("木村", "キムラ", 12),
    ("林", "ハヤシ", 11),
    ("斎藤", "サイトウ", 11),
    ("清水", "シミズ", 11),
    ("山崎", "ヤマザキ", 9),
    ("山﨑", "ヤマザキ", 2),
    ("森", "モリ", 9),
    ("池田", "イケダ", 9),
    ("橋本", "ハシモト", 9),
    ("阿部", "アベ", 9),
    ("石川", "イシカワ", 9),
    ("山下", "ヤマシタ", 9),
    ("中島", "ナカジマ", 8),
    ("石井", "イシイ", 8),
    ("小川", "オガワ", 8),
    ("前田", "マエダ", 8),
    ("岡田", "オカダ", 8),
    ("長谷川", "ハセガワ", 8),
    ("藤田", "フジタ", 8),
    ("後藤", "ゴトウ", 8),
    ("近藤", "コンドウ", 8),
    ("村上", "ムラカミ", 7),
    ("遠藤", "エンドウ", 7),
    ("青木", "アオキ", 7),
    ("坂本", "サカモト", 7),
    ("斉藤", "サイトウ", 7),
    ("福田", "フクダ", 7),
    ("太田", "オオタ", 7),
    ("西村", "ニシムラ", 7),
    ("藤井", "フジイ", 7),
    ("金子", "カネコ", 6),
    ("岡本", "オカモト", 6),
    ("藤原", "フジワラ", 6),
    ("中野", "ナカノ", 6),
    ("三浦", "ミウラ", 6),
    ("原田", "ハラダ", 6),
    ("中川", "ナカガワ", 6),
    ("松田", "マツダ", 6),
    ("竹内", "タケウチ", 6),
    ("小野", "オノ", 6),
    ("田村", "タムラ", 6),
    ("中山", "ナカヤマ", 5),
    ("和田", "ワダ", 5),
    ("石田", "イシダ", 5),
    ("森田", "モリタ", 5),
    ("上田", "ウエダ", 5),
    ("原", "ハラ", 5),
    ("内田", "ウチダ", 5),
    ("柴田", "シバタ", 5),
    ("酒井", "サカイ", 5),
    ("宮崎", "ミヤザキ", 5),
    ("横山", "ヨコヤマ", 5),
    ("高木", "タカギ", 5),
    ("安藤", "アンドウ", 5),
    ("宮本", "ミヤモト", 5),
    ("大野", "オオノ", 5),
    ("小島", "コジマ", 4),
    ("工藤", "クドウ", 4),
    ("谷口", "タニグチ", 4),
    ("今井", "イマイ", 4),
    ("高田", "タカダ", 4),
    ("丸山", "マルヤマ", 4),
    ("増田", "マスダ", 4),
    ("杉山", "スギヤマ", 4),
    ("村田", "ムラタ", 4),
    ("大塚", "オオツカ", 4),
    ("小山", "コヤマ", 4),
    ("平野", "ヒラノ", 4),
    ("藤本", "フジモト", 4),
    ("河野", "コウノ", 4),
    ("上野", "ウエノ", 4),
    ("野口", "ノグチ", 4),
    ("武田", "タケダ", 4),
    ("松井", "マツイ", 4),
    ("千葉", "チバ", 4),
    ("菅原", "スガワラ", 4),
    ("岩崎", "イワサキ", 4),
    ("久保", "クボ", 4),
    ("木下", "キノシタ", 4),
    ("野村", "ノムラ", 4),
    ("菊地", "キクチ", 3),
    ("東海林", "ショウジ", 1),
    ("小鳥遊", "タカナシ", 1),
    ("四月一日", "ワタヌキ", 1),
]

# (kanji, katakana reading, weight)
GIVEN_NAMES_MALE: list[tuple[str, str, int]] = [
    ("太郎", "タロウ", 3),
    ("一郎", "イチロウ", 3),
    ("健太", "ケンタ", 4),
    ("翔太", "ショウタ", 4),
    ("大輔", "ダイスケ", 4),
    ("拓也", "タクヤ", 4),
    ("直樹", "ナオキ", 4),
    ("誠", "マコト", 4),
    ("浩", "ヒロシ", 4),
    ("隆", "タカシ", 4),
    ("健一", "ケンイチ", 3),
    ("和也", "カズヤ", 3),
    ("達也", "タツヤ", 3),
    ("亮", "リョウ", 3),
    ("剛", "ツヨシ", 3),
    ("修", "オサム", 3),
    ("茂", "シゲル", 3),
    ("博之", "ヒロユキ", 3),
    ("秀樹", "ヒデキ", 3),
    ("雅人", "マサト", 3),
    ("康弘", "ヤスヒロ", 2),
    ("俊介", "シュンスケ", 2),
    ("蓮", "レン", 2),
    ("悠真", "ユウマ", 2),
    ("陽翔", "ハルト", 2),
    ("湊", "ミナト", 2),
    ("大翔", "ヒロト", 2),
    ("潤一郎", "ジュンイチロウ", 1),
    ("勝", "マサル", 2),
    ("清", "キヨシ", 2),
    ("正雄", "マサオ", 2),
    ("昭夫", "アキオ", 2),
    ("聡", "サトシ", 3),
    ("学", "マナブ", 2),
    ("豊", "ユタカ", 2),
]

GIVEN_NAMES_FEMALE: list[tuple[str, str, int]] = [
    ("花子", "ハナコ", 2),
    ("陽子", "ヨウコ", 3),
    ("恵子", "ケイコ", 3),
    ("裕子", "ユウコ", 4),
    ("久美子", "クミコ", 3),
    ("由美", "ユミ", 4),
    ("真由美", "マユミ", 3),
    ("直美", "ナオミ", 3),
    ("智子", "トモコ", 4),
    ("明美", "アケミ", 3),
    ("美穂", "ミホ", 3),
    ("愛", "アイ", 3),
    ("彩", "アヤ", 3),
    ("舞", "マイ", 3),
    ("香織", "カオリ", 3),
    ("麻衣", "マイ", 2),
    ("沙織", "サオリ", 3),
    ("優子", "ユウコ", 3),
    ("純子", "ジュンコ", 3),
    ("幸子", "サチコ", 3),
    ("和子", "カズコ", 2),
    ("節子", "セツコ", 2),
    ("美咲", "ミサキ", 3),
    ("さくら", "サクラ", 2),
    ("陽菜", "ヒナ", 2),
    ("結衣", "ユイ", 2),
    ("葵", "アオイ", 2),
    ("凛", "リン", 2),
    ("千尋", "チヒロ", 2),
    ("静香", "シズカ", 2),
    ("理恵", "リエ", 3),
    ("奈々", "ナナ", 2),
    ("美和", "ミワ", 2),
    ("友美", "トモミ", 2),
    ("京子", "キョウコ", 2),
]

# Reserved example domains (RFC 2606 and JPRS): mail to them never reaches anyone.
EMAIL_DOMAINS: list[tuple[str, int]] = [
    ("example.jp", 30),
    ("example.ne.jp", 20),
    ("example.co.jp", 10),
    ("example.or.jp", 4),
    ("example.com", 25),
    ("example.net", 8),
    ("example.org", 3),
]

# Apartment and house names for the 建物名 column.
BUILDINGS = [
    "グランドメゾン",
    "パークハイツ",
    "サンライズマンション",
    "コーポ緑",
    "ハイツ桜",
    "ライオンズマンション",
    "メゾン・ド・ソレイユ",
    "シティハウス",
    "レジデンス本町",
    "アーバンコート",
    "第二松風荘",
    "フォレストヒルズ",
]


# --- Places where donors live -------------------------------------------------------------
@dataclass(frozen=True)
class Place:
    prefecture: str
    city: str
    postal_prefixes: tuple[str, ...]  # first three digits of postal codes in this city
    towns: tuple[str, ...]
    area_code: str  # landline area code including the leading 0
    weight: int = 1


# Donors mostly live in the big metropolitan areas; the weights say roughly how many.
DONOR_PLACES: list[Place] = [
    Place(
        "東京都",
        "世田谷区",
        ("154", "155", "156", "157", "158"),
        ("太子堂", "三軒茶屋", "北沢", "代沢", "桜新町", "成城", "用賀"),
        "03",
        9,
    ),
    Place(
        "東京都",
        "練馬区",
        ("176", "177", "178", "179"),
        ("豊玉北", "練馬", "石神井町", "大泉学園町", "光が丘"),
        "03",
        7,
    ),
    Place(
        "東京都",
        "杉並区",
        ("166", "167", "168"),
        ("阿佐谷南", "高円寺北", "荻窪", "西荻北", "永福"),
        "03",
        6,
    ),
    Place(
        "東京都",
        "大田区",
        ("143", "144", "145", "146"),
        ("蒲田", "大森北", "田園調布", "久が原", "池上"),
        "03",
        6,
    ),
    Place(
        "東京都", "江東区", ("135", "136"), ("豊洲", "東陽", "亀戸", "門前仲町", "大島"), "03", 5
    ),
    Place(
        "東京都",
        "港区",
        ("105", "106", "107", "108"),
        ("芝浦", "高輪", "南青山", "麻布十番", "白金"),
        "03",
        4,
    ),
    Place(
        "東京都",
        "八王子市",
        ("192", "193"),
        ("明神町", "子安町", "横山町", "南大沢", "めじろ台"),
        "042",
        4,
    ),
    Place(
        "神奈川県",
        "横浜市青葉区",
        ("225", "227"),
        ("美しが丘", "青葉台", "藤が丘", "あざみ野", "たまプラーザ"),
        "045",
        5,
    ),
    Place(
        "神奈川県",
        "横浜市港北区",
        ("222", "223"),
        ("日吉", "綱島西", "大倉山", "菊名", "新横浜"),
        "045",
        5,
    ),
    Place(
        "神奈川県",
        "川崎市中原区",
        ("211",),
        ("小杉町", "新丸子町", "木月", "上小田中", "今井南町"),
        "044",
        4,
    ),
    Place(
        "埼玉県", "さいたま市浦和区", ("330",), ("高砂", "岸町", "常盤", "仲町", "北浦和"), "048", 4
    ),
    Place("埼玉県", "川口市", ("332", "333"), ("本町", "栄町", "幸町", "芝", "西川口"), "048", 3),
    Place(
        "千葉県", "船橋市", ("273", "274"), ("本町", "湊町", "前原西", "習志野台", "西船"), "047", 3
    ),
    Place(
        "千葉県", "千葉市美浜区", ("261",), ("幕張西", "高洲", "稲毛海岸", "真砂", "打瀬"), "043", 3
    ),
    Place(
        "大阪府", "大阪市北区", ("530", "531"), ("梅田", "天満", "中崎", "扇町", "豊崎"), "06", 4
    ),
    Place(
        "大阪府",
        "豊中市",
        ("560", "561"),
        ("本町", "上野東", "新千里東町", "岡町", "曽根東町"),
        "06",
        3,
    ),
    Place(
        "愛知県",
        "名古屋市千種区",
        ("464",),
        ("今池", "覚王山通", "星が丘元町", "池下", "本山町"),
        "052",
        4,
    ),
    Place(
        "兵庫県",
        "神戸市東灘区",
        ("658",),
        ("住吉本町", "岡本", "御影", "魚崎北町", "本山北町"),
        "078",
        3,
    ),
    Place(
        "京都府",
        "京都市左京区",
        ("606",),
        ("下鴨松ノ木町", "北白川", "岡崎", "田中里ノ内町", "松ケ崎"),
        "075",
        2,
    ),
    Place("福岡県", "福岡市中央区", ("810",), ("天神", "大名", "薬院", "警固", "六本松"), "092", 3),
    Place(
        "北海道",
        "札幌市中央区",
        ("060", "064"),
        ("宮の森", "円山", "北一条西", "南三条西", "旭ケ丘"),
        "011",
        3,
    ),
    Place(
        "宮城県",
        "仙台市青葉区",
        ("980", "981"),
        ("一番町", "国分町", "本町", "上杉", "八幡"),
        "022",
        2,
    ),
    Place(
        "広島県",
        "広島市中区",
        ("730",),
        ("紙屋町", "大手町", "八丁堀", "白島", "国泰寺町"),
        "082",
        2,
    ),
    Place(
        "静岡県", "静岡市葵区", ("420",), ("呉服町", "鷹匠", "紺屋町", "駒形通", "安東"), "054", 2
    ),
]


# --- Municipalities ------------------------------------------------------------------------
@dataclass(frozen=True)
class GiftSpec:
    code: str
    name: str
    provider: int  # index into the municipality's providers
    perishable: bool = False
    deliveries: int = 1
    season: tuple[int, int] | None = None  # (first month, last month), may wrap the new year
    amount: int = 10000  # donation amount that earns the gift
    registered_mail: bool = False  # vouchers go by 書留


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    name_kana: str
    contact_person: str
    carrier: str  # carrier code the provider ships with


@dataclass(frozen=True)
class MunicipalitySpec:
    code: str  # 全国地方公共団体コード with its check digit
    name: str
    name_kana: str
    prefecture: str
    slug: str  # used for e-mail addresses and log-in names
    area_code: str
    postal_prefixes: tuple[str, ...]
    towns: tuple[str, ...]
    weight: int = 1  # share of donors at operator scale
    providers: tuple[ProviderSpec, ...] = field(default=())
    gifts: tuple[GiftSpec, ...] = field(default=())

    @property
    def answer_name(self) -> str:
        return f"{self.name}ふるさと納税コールセンター"

    @property
    def place(self) -> Place:
        return Place(self.prefecture, self.name, self.postal_prefixes, self.towns, self.area_code)


OTARU = MunicipalitySpec(
    code="012033",
    name="小樽市",
    name_kana="オタルシ",
    prefecture="北海道",
    slug="otaru",
    area_code="0134",
    postal_prefixes=("047",),
    towns=("稲穂", "花園", "色内", "緑", "長橋", "入船", "富岡", "朝里"),
    weight=12,
    providers=(
        ProviderSpec("小樽海産物加工株式会社", "オタルカイサンブツカコウ", "北村 修", "yamato"),
        ProviderSpec("有限会社 運河ガラス工房", "ウンガガラスコウボウ", "菅原 美和", "sagawa"),
        ProviderSpec("おたる葡萄酒醸造所", "オタルブドウシュジョウゾウショ", "工藤 学", "yupack"),
        ProviderSpec("株式会社 北の菓子舗", "キタノカシホ", "千葉 恵子", "yamato"),
        ProviderSpec(
            "小樽観光振興公社（旅行券）", "オタルカンコウシンコウコウシャ", "森 聡", "registered"
        ),
    ),
    gifts=(
        GiftSpec("OTR-001", "北海道産 いくら醤油漬け 500g", 0, perishable=True, amount=20000),
        GiftSpec("OTR-002", "ほたて貝柱 1kg（冷凍）", 0, perishable=True, amount=15000),
        GiftSpec(
            "OTR-003", "活毛ガニ 2尾（約500g×2）", 0, perishable=True, season=(12, 3), amount=30000
        ),
        GiftSpec("OTR-004", "海鮮定期便 全6回", 0, perishable=True, deliveries=6, amount=60000),
        GiftSpec("OTR-005", "小樽運河 手作りグラス ペア", 1, amount=20000),
        GiftSpec("OTR-006", "おたるワイン 赤白3本セット", 2, amount=15000),
        GiftSpec("OTR-007", "北海道産 メロン 2玉", 3, perishable=True, season=(6, 8), amount=12000),
        GiftSpec("OTR-008", "銘菓 詰め合わせ", 3, amount=10000),
        GiftSpec(
            "OTR-009", "小樽市内 宿泊・観光クーポン 3万円分", 4, amount=100000, registered_mail=True
        ),
        GiftSpec("OTR-010", "にしん甘露煮・昆布巻セット", 0, amount=10000),
    ),
)

FUKUYAMA = MunicipalitySpec(
    code="342076",
    name="福山市",
    name_kana="フクヤマシ",
    prefecture="広島県",
    slug="fukuyama",
    area_code="084",
    postal_prefixes=("720", "721"),
    towns=("霞町", "延広町", "春日町", "引野町", "東桜町", "南蔵王町", "鞆町", "松永町"),
    weight=5,
    providers=(
        ProviderSpec("鞆の浦 鯛網水産", "トモノウラタイアミスイサン", "岡本 隆", "yamato"),
        ProviderSpec("びんご デニム工房", "ビンゴデニムコウボウ", "村上 彩", "sagawa"),
        ProviderSpec("株式会社 保命酒本舗", "ホウメイシュホンポ", "藤原 茂", "yupack"),
        ProviderSpec("福山農協 直売部", "フクヤマノウキョウチョクバイブ", "原田 直樹", "yupack"),
        ProviderSpec("松永 はきもの工房", "マツナガハキモノコウボウ", "小川 裕子", "sagawa"),
    ),
    gifts=(
        GiftSpec(
            "FKY-101",
            "鞆の浦 天然真鯛 1尾（約1.5kg）",
            0,
            perishable=True,
            season=(3, 6),
            amount=20000,
        ),
        GiftSpec("FKY-102", "瀬戸内 焼き海苔 10帖", 0, amount=10000),
        GiftSpec("FKY-103", "備後デニム ジーンズ（サイズ選択）", 1, amount=60000),
        GiftSpec("FKY-104", "保命酒 飲み比べ 3本", 2, amount=15000),
        GiftSpec(
            "FKY-105", "広島県産 レモン 3kg", 3, perishable=True, season=(11, 3), amount=10000
        ),
        GiftSpec("FKY-106", "福山産 お米 定期便 5kg×全12回", 3, deliveries=12, amount=120000),
        GiftSpec("FKY-107", "松永 桐下駄", 4, amount=25000),
        GiftSpec("FKY-108", "ばら の鉢植え", 3, perishable=True, season=(4, 6), amount=15000),
    ),
)

FUJISAWA = MunicipalitySpec(
    code="142051",
    name="藤沢市",
    name_kana="フジサワシ",
    prefecture="神奈川県",
    slug="fujisawa",
    area_code="0466",
    postal_prefixes=("251", "252"),
    towns=("鵠沼海岸", "辻堂", "湘南台", "片瀬海岸", "藤沢", "善行", "長後", "六会"),
    weight=6,
    providers=(
        ProviderSpec(
            "湘南しらす漁業組合 直販所",
            "ショウナンシラスギョギョウクミアイチョクハンジョ",
            "石井 健太",
            "yamato",
        ),
        ProviderSpec("藤沢ファーム", "フジサワファーム", "中野 美穂", "yupack"),
        ProviderSpec(
            "湘南クラフトビール醸造", "ショウナンクラフトビールジョウゾウ", "平野 拓也", "sagawa"
        ),
        ProviderSpec(
            "江の島観光協会（旅行券）", "エノシマカンコウキョウカイ", "上野 由美", "registered"
        ),
    ),
    gifts=(
        GiftSpec(
            "FJS-01", "湘南しらす 釜揚げ 1kg", 0, perishable=True, season=(3, 12), amount=12000
        ),
        GiftSpec("FJS-02", "湘南ゴールド 3kg", 1, perishable=True, season=(3, 4), amount=10000),
        GiftSpec(
            "FJS-03", "藤沢産 旬の野菜 定期便 全3回", 1, perishable=True, deliveries=3, amount=30000
        ),
        GiftSpec("FJS-04", "湘南クラフトビール 6本", 2, amount=13000),
        GiftSpec("FJS-05", "湘南クラフトビール 定期便 全6回", 2, deliveries=6, amount=70000),
        GiftSpec("FJS-06", "江の島 観光クーポン 1万円分", 3, amount=33000, registered_mail=True),
        GiftSpec("FJS-07", "片瀬 干物セット", 0, perishable=True, amount=10000),
    ),
)

DEMO_MUNICIPALITIES = [OTARU, FUKUYAMA, FUJISAWA]


def _generic_catalogue(
    spec_code: str, city: str, prefecture: str, specialty: str
) -> tuple[tuple[ProviderSpec, ...], tuple[GiftSpec, ...]]:
    """A plausible catalogue for a municipality of the operator-scale dataset."""
    pref = prefecture.rstrip("都道府県") if prefecture != "北海道" else "北海道"
    prefix = spec_code[:5]
    providers = (
        ProviderSpec(f"{city[:-1]}特産品協会", "トクサンヒンキョウカイ", "佐藤 誠", "yamato"),
        ProviderSpec(f"{city[:-1]}農産直売所", "ノウサンチョクバイジョ", "鈴木 裕子", "yupack"),
        ProviderSpec(f"{city[:-1]}酒造", "シュゾウ", "高橋 浩", "sagawa"),
        ProviderSpec(
            f"{city[:-1]}観光協会（旅行券）", "カンコウキョウカイ", "田中 智子", "registered"
        ),
    )
    gifts = (
        GiftSpec(f"{prefix}-01", f"{pref}産 {specialty}", 0, perishable=True, amount=15000),
        GiftSpec(f"{prefix}-02", f"{pref}産 コシヒカリ 10kg", 1, amount=15000),
        GiftSpec(f"{prefix}-03", f"{pref}産 お米 定期便 5kg×全6回", 1, deliveries=6, amount=60000),
        GiftSpec(
            f"{prefix}-04",
            f"{pref}産 旬のフルーツ",
            1,
            perishable=True,
            season=(7, 10),
            amount=12000,
        ),
        GiftSpec(f"{prefix}-05", f"{city[:-1]}の地酒 飲み比べ 3本", 2, amount=15000),
        GiftSpec(f"{prefix}-06", f"{pref}産 和牛 切り落とし 1kg", 0, perishable=True, amount=20000),
        GiftSpec(
            f"{prefix}-07", f"{city}内 観光クーポン 1万円分", 3, amount=33000, registered_mail=True
        ),
        GiftSpec(f"{prefix}-08", f"{city[:-1]}の銘菓 詰め合わせ", 0, amount=10000),
    )
    return providers, gifts


def _scale_city(
    code: str,
    name: str,
    kana: str,
    prefecture: str,
    slug: str,
    area_code: str,
    postal: str,
    specialty: str,
    weight: int = 1,
) -> MunicipalitySpec:
    providers, gifts = _generic_catalogue(code, name, prefecture, specialty)
    return MunicipalitySpec(
        code=code,
        name=name,
        name_kana=kana,
        prefecture=prefecture,
        slug=slug,
        area_code=area_code,
        postal_prefixes=(postal,),
        towns=("本町", "栄町", "中央", "緑町", "旭町", "若葉町"),
        weight=weight,
        providers=providers,
        gifts=gifts,
    )


# The operator-scale dataset: the three demo cities plus 27 more, all with real codes.
SCALE_MUNICIPALITIES: list[MunicipalitySpec] = [
    OTARU,
    FUKUYAMA,
    FUJISAWA,
    _scale_city("012025", "函館市", "ハコダテシ", "北海道", "hakodate", "0138", "040", "いか", 6),
    _scale_city(
        "012041", "旭川市", "アサヒカワシ", "北海道", "asahikawa", "0166", "070", "ジンギスカン", 4
    ),
    _scale_city("012068", "釧路市", "クシロシ", "北海道", "kushiro", "0154", "085", "さんま", 4),
    _scale_city(
        "012190", "紋別市", "モンベツシ", "北海道", "monbetsu", "0158", "094", "ずわいがに", 10
    ),
    _scale_city("012238", "根室市", "ネムロシ", "北海道", "nemuro", "0153", "087", "花咲がに", 10),
    _scale_city("022012", "青森市", "アオモリシ", "青森県", "aomori", "017", "030", "ほたて", 2),
    _scale_city("032018", "盛岡市", "モリオカシ", "岩手県", "morioka", "019", "020", "短角牛", 2),
    _scale_city("052019", "秋田市", "アキタシ", "秋田県", "akita", "018", "010", "比内地鶏", 2),
    _scale_city(
        "062014", "山形市", "ヤマガタシ", "山形県", "yamagata", "023", "990", "さくらんぼ", 3
    ),
    _scale_city("072010", "福島市", "フクシマシ", "福島県", "fukushima", "024", "960", "桃", 3),
    _scale_city("082015", "水戸市", "ミトシ", "茨城県", "mito", "029", "310", "納豆", 1),
    _scale_city(
        "092011", "宇都宮市", "ウツノミヤシ", "栃木県", "utsunomiya", "028", "320", "いちご", 2
    ),
    _scale_city("102016", "前橋市", "マエバシシ", "群馬県", "maebashi", "027", "371", "豚肉", 1),
    _scale_city("162019", "富山市", "トヤマシ", "富山県", "toyama", "076", "930", "白えび", 2),
    _scale_city(
        "172014", "金沢市", "カナザワシ", "石川県", "kanazawa", "076", "920", "のどぐろ", 3
    ),
    _scale_city("182010", "福井市", "フクイシ", "福井県", "fukui", "0776", "910", "越前がに", 2),
    _scale_city(
        "192015", "甲府市", "コウフシ", "山梨県", "kofu", "055", "400", "シャインマスカット", 3
    ),
    _scale_city("202011", "長野市", "ナガノシ", "長野県", "nagano", "026", "380", "りんご", 2),
    _scale_city("212016", "岐阜市", "ギフシ", "岐阜県", "gifu", "058", "500", "鮎", 1),
    _scale_city("242012", "津市", "ツシ", "三重県", "tsu", "059", "514", "松阪牛", 2),
    _scale_city("312011", "鳥取市", "トットリシ", "鳥取県", "tottori", "0857", "680", "梨", 1),
    _scale_city("322016", "松江市", "マツエシ", "島根県", "matsue", "0852", "690", "しじみ", 1),
    _scale_city("392014", "高知市", "コウチシ", "高知県", "kochi", "088", "780", "かつお", 2),
    _scale_city("412015", "佐賀市", "サガシ", "佐賀県", "saga", "0952", "840", "佐賀牛", 2),
    _scale_city(
        "422011", "長崎市", "ナガサキシ", "長崎県", "nagasaki", "095", "850", "からすみ", 2
    ),
    _scale_city(
        "452017", "宮崎市", "ミヤザキシ", "宮崎県", "miyazaki", "0985", "880", "マンゴー", 3
    ),
    _scale_city(
        "452025", "都城市", "ミヤコノジョウシ", "宮崎県", "miyakonojo", "0986", "885", "黒豚", 14
    ),
]


# --- Carriers --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CarrierSpec:
    code: str
    name: str
    short_name: str
    tracking_url_template: str
    tracking_rule: str  # one of crm.normalize.TRACKING_RULE_*
    # First digits of generated numbers (and, for S10, the service letters and country).
    prefix: str


_JP_POST_URL = (
    "https://trackings.post.japanpost.jp/services/srv/search/direct?reqCodeNo1={number}&locale=ja"
)

CARRIERS: list[CarrierSpec] = [
    CarrierSpec(
        "yamato",
        "ヤマト運輸",
        "ヤマト",
        "https://toi.kuronekoyamato.co.jp/cgi-bin/tneko?number01={number}",
        "mod7_12",
        "4",
    ),
    CarrierSpec(
        "sagawa",
        "佐川急便",
        "佐川",
        "https://k2k.sagawa-exp.co.jp/p/web/okurijosearch.do?okurijoNo={number}",
        "mod7_12",
        "3",
    ),
    CarrierSpec("yupack", "日本郵便 ゆうパック", "ゆうパック", _JP_POST_URL, "mod7_12", "1"),
    CarrierSpec("registered", "日本郵便 書留", "書留", _JP_POST_URL, "mod7_11", "5"),
    CarrierSpec(
        "international", "日本郵便 国際郵便（EMS）", "EMS", _JP_POST_URL, "upu_s10", "EMJP"
    ),
]
