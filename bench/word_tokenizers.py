"""Throughput of the word tokenizers against their backends called directly.

    python -m bench.word_tokenizers                  # ja, zh, en
    python -m bench.word_tokenizers --langs ja --repeats 30

For each language, in one process and interleaved (every repeat runs every variant once, in a
shuffled order), it measures the CPU time of:

- `raw`: the backend alone, reading the fields our tokens carry, text by text, dropping them
  (Sudachi: tokenize, then surface, begin, end, POS id, dictionary and normalized forms;
  jieba: posseg words and tags; spaCy: `nlp.pipe`, then text, idx, pos_, lemma_, is_space);
  for English also `raw_each`: `nlp(text)` text by text;
- `raw_keep`: the same, keeping every text's fields as a list of tuples;
- `tokenize`: our `tokenize` text by text, each result used and dropped (how the aligner and
  verifier call it); held against `raw` (`raw_each` for English);
- `batch`: our `tokenize_batch` over all texts, which returns every token; held against
  `raw_keep`, the backend's cost of keeping as much (also shown against `raw`).

The overhead is the median over repeats of (ours / baseline of the same repeat) - 1: pairing
the runs of one repeat cancels most of the drift of a shared machine, the median the rest.
Sentences: Japanese from the stockmark data (../shared/data or $MMM_SHARED_DATA), Chinese and
English from the lists below (Wikipedia-style sentences about companies, people and places).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: `bench/` must not shadow the package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import word_tokenizers

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.15

ZH_SENTENCES = [
    "阿里巴巴集团总部位于浙江省杭州市，是中国最大的电子商务公司之一。",
    "2019年，华为技术有限公司在深圳发布了新一代折叠屏手机。",
    "北京大学是中国近代第一所国立综合性大学，创办于1898年。",
    "腾讯公司推出的微信已经成为全球用户最多的即时通讯软件之一。",
    "长江是亚洲第一长河，全长约6300公里，流经青海、西藏、四川等省区。",
    "鲁迅原名周树人，是中国现代文学的奠基人之一，代表作有《狂人日记》。",
    "上海浦东国际机场于1999年正式通航，是中国三大门户复合枢纽之一。",
    "故宫博物院位于北京中轴线的中心，是明清两代的皇家宫殿。",
    "比亚迪股份有限公司是一家致力于新能源汽车研发与生产的企业。",
    "姚明曾效力于美国职业篮球联赛的休斯顿火箭队，并多次入选全明星。",
    "第二十九届夏季奥林匹克运动会于2008年8月在北京举行。",
    "中国科学院是中国自然科学最高学术机构和科学技术最高咨询机构。",
    "小米科技在香港联合交易所主板上市，成为当年规模最大的科技股首次公开募股。",
    "黄山位于安徽省南部，以奇松、怪石、云海和温泉闻名于世。",
    "清华大学的前身是清华学堂，始建于1911年，校址位于北京西北郊。",
    "百度公司创立于2000年，总部位于北京市海淀区中关村。",
    "这部电影讲述了一个年轻画家在巴黎追寻梦想的故事，受到观众的热烈欢迎。",
    "联想集团收购了国际商业机器公司的个人电脑业务，成为全球重要的电脑厂商。",
    "西湖是杭州市区西部的淡水湖，2011年被列入世界遗产名录。",
    "屠呦呦因发现青蒿素获得2015年诺贝尔生理学或医学奖。",
    "中国国家铁路集团有限公司负责全国铁路的运输组织和统一调度。",
    "京东集团在江苏省宿迁市建设了大型物流中心，提高了配送效率。",
    "敦煌莫高窟始建于十六国的前秦时期，保存了大量精美的壁画和塑像。",
    "新华社报道，国务院常务会议研究部署了进一步稳定就业的措施。",
    "上海证券交易所成立于1990年11月，是中国大陆两家证券交易所之一。",
    "这家餐厅的菜品非常美味，服务也很周到，顾客们都很满意。",
    "李白是唐代伟大的浪漫主义诗人，被后人誉为诗仙。",
    "港珠澳大桥连接香港、珠海和澳门，全长五十五公里，于2018年通车。",
    "中国石油天然气集团有限公司是国有重要骨干企业，业务遍及多个国家。",
    "这次展览展出了来自世界各地的珍贵文物，吸引了大量游客参观。",
    "网易公司开发的多款网络游戏在国内外市场都取得了很好的成绩。",
    "青藏铁路是世界上海拔最高、线路最长的高原铁路。",
    "中国女排在2016年里约热内卢奥运会上夺得冠军。",
    "美团的外卖业务覆盖了全国两千多个市县，日订单量持续增长。",
    "苏州园林以精巧的布局和优美的景色著称，其中拙政园最为有名。",
    "国家航天局宣布，嫦娥五号探测器成功带回月球样品。",
    "这款新手机的屏幕很大，电池续航时间也比上一代更长。",
    "中国人民银行决定下调金融机构存款准备金率零点五个百分点。",
    "张艺谋执导的电影《红高粱》获得了柏林国际电影节金熊奖。",
    "泰山位于山东省中部，是中国五岳之首，自古以来受到帝王的封禅。",
    "字节跳动旗下的短视频平台在海外市场获得了大量年轻用户。",
    "南京长江大桥是长江上第一座由中国自行设计和建造的双层式铁路、公路两用桥梁。",
    "这位科学家长期从事量子通信研究，取得了许多重要成果。",
    "中国移动通信集团有限公司是全球网络规模最大的移动通信运营商之一。",
    "每年春节前后，数以亿计的人乘坐火车、飞机回家与家人团聚。",
    "华东师范大学与多所海外高校建立了长期合作关系。",
    "这座城市的空气质量近年来明显改善，蓝天的日子越来越多。",
    "海尔集团从一家濒临倒闭的小厂发展成为全球知名的家电企业。",
    "三峡工程是世界上规模最大的水电站，具有防洪、发电和航运等综合效益。",
    "他在比赛中表现出色，最终以明显优势赢得了冠军。",
]

EN_SENTENCES = [
    "Toyota Motor Corporation is headquartered in Toyota City, Aichi Prefecture, Japan.",
    "In 2019, the company opened a new research center in Cambridge, Massachusetts.",
    "Haruki Murakami's novels have been translated into more than fifty languages.",
    "The Shinkansen connects Tokyo and Osaka in about two and a half hours.",
    "Sony Group Corporation announced a partnership with Honda to develop electric vehicles.",
    "Mount Fuji is the highest mountain in Japan and an active stratovolcano.",
    "The University of Tokyo was established in 1877 as the first imperial university.",
    "She studied architecture at Kyoto University before joining a design firm in Berlin.",
    "The Tokyo Stock Exchange is one of the largest stock exchanges in the world.",
    "Nintendo released the Switch console in March 2017, and it quickly became a best seller.",
    "The festival attracts hundreds of thousands of visitors to Sapporo every February.",
    "Panasonic moved its North American headquarters from New Jersey to Newark in 2013.",
    "Akira Kurosawa directed Seven Samurai, which is often cited as one of the greatest films.",
    "The bridge was badly damaged by the earthquake and reopened two years later.",
    "The Bank of Japan kept its short-term interest rate unchanged at minus 0.1 percent.",
    "Hokkaido is known for its dairy products, seafood and beautiful winter landscapes.",
    "The museum's collection includes ukiyo-e prints by Hokusai and Hiroshige.",
    "Rakuten acquired the messaging app Viber for about 900 million dollars.",
    "The team won the national championship after a dramatic final against Osaka.",
    "Yokohama is Japan's second largest city by population and a major port.",
    "The new smartphone has a brighter screen, a faster processor and a longer battery life.",
    "Shigeru Miyamoto created Donkey Kong, Super Mario Bros. and The Legend of Zelda.",
    "The government announced a stimulus package worth 40 trillion yen.",
    "Kyoto was the capital of Japan for more than a thousand years.",
    "SoftBank Group invested heavily in technology startups through its Vision Fund.",
    "The restaurant serves excellent sushi, and the staff are friendly and helpful.",
    "The Meiji Restoration of 1868 transformed Japan into a modern industrial state.",
    "Fast Retailing, the parent company of Uniqlo, operates stores in over twenty countries.",
    "The typhoon brought heavy rain and strong winds to Okinawa on Tuesday.",
    "Hitachi sold its stake in the chemical company to a group of investors.",
    "The Olympic Games were held in Tokyo in 2021 after a one-year postponement.",
    "Her first album sold over a million copies and won several music awards.",
    "The Japan Aerospace Exploration Agency launched the probe from Tanegashima Space Center.",
    "Osaka Castle was rebuilt in 1931 and now houses a museum about its history.",
    "The professor's research focuses on machine translation and information extraction.",
    "Mitsubishi Heavy Industries builds ships, aircraft parts and power plant equipment.",
    "The novel tells the story of a young woman who leaves her village for Tokyo.",
    "Nagoya Station is one of the largest railway stations in the world by floor area.",
    "The company reported record profits thanks to strong demand for semiconductors.",
    "Ichiro Suzuki played for the Seattle Mariners and recorded over 3,000 hits in MLB.",
    "The old temple is surrounded by a quiet garden with moss and maple trees.",
    "The Ministry of Education introduced English classes in elementary schools.",
    "Canon and Nikon compete fiercely in the market for professional cameras.",
    "The concert was cancelled because of the storm, and fans were disappointed.",
    "Hiroshima Peace Memorial Park was built on the site of the former city center.",
    "The startup developed an app that helps farmers predict crop yields.",
    "Keio University is the oldest institute of higher education in Japan.",
    "The airline added direct flights between Fukuoka and Singapore last year.",
    "The actor won the award for best supporting role at the Japan Academy Film Prize.",
    "Shibuya Crossing is famous for the crowds that cross it from all directions at once.",
]


def shared_data_dir() -> Path:
    env = os.environ.get("MMM_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def japanese_sentences(limit: int) -> list[str]:
    path = shared_data_dir() / "stockmark-ner-ja" / "ner.jsonl"
    with path.open(encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    return texts[:limit]


# ------------------------------------------------------------------------------------------
# The backends called directly, reading what our tokens carry: `raw` reads and drops the
# fields (the target's baseline), `raw_keep` keeps them as tuples (what any caller that uses
# the result pays too; shown for reference).

Run = Callable[[Sequence[str]], object]


def raw_ja(tokenizer: Any) -> dict[str, Run]:
    # Sudachi as a user would call it: default fields, same dictionary and split mode.
    sudachi = tokenizer.dictionary.tokenizer(tokenizer.mode)

    def raw(texts: Sequence[str]) -> object:
        n = 0
        for text in texts:
            for m in sudachi.tokenize(text):
                _ = m.surface(), m.begin(), m.end(), m.part_of_speech_id()
                _ = m.dictionary_form(), m.normalized_form()
                n += 1
        return n

    def raw_keep(texts: Sequence[str]) -> object:
        return [
            [
                (
                    m.surface(),
                    m.begin(),
                    m.end(),
                    m.part_of_speech_id(),
                    m.dictionary_form(),
                    m.normalized_form(),
                )
                for m in sudachi.tokenize(text)
            ]
            for text in texts
        ]

    return {"raw": raw, "raw_keep": raw_keep}


def raw_zh(tokenizer: Any) -> dict[str, Run]:
    posseg = tokenizer.backend

    def raw(texts: Sequence[str]) -> object:
        n = 0
        for text in texts:
            for pair in posseg.cut(text):
                _ = pair.word, pair.flag
                n += 1
        return n

    def raw_keep(texts: Sequence[str]) -> object:
        return [[(p.word, p.flag) for p in posseg.cut(text)] for text in texts]

    return {"raw": raw, "raw_keep": raw_keep}


def raw_en(tokenizer: Any) -> dict[str, Run]:
    nlp = tokenizer.nlp

    def read(docs: Iterable[Any]) -> object:
        n = 0
        for doc in docs:
            for t in doc:
                _ = t.text, t.idx, t.pos_, t.lemma_, t.is_space
                n += 1
        return n

    def raw_keep(texts: Sequence[str]) -> object:
        return [
            [(t.text, t.idx, t.pos_, t.lemma_, t.is_space) for t in doc]
            for doc in nlp.pipe(texts, batch_size=256)
        ]

    return {
        "raw": lambda texts: read(nlp.pipe(texts, batch_size=256)),
        "raw_each": lambda texts: read(nlp(text) for text in texts),  # what `tokenize` is
        "raw_keep": raw_keep,
    }


RAW: dict[str, Callable[[Any], dict[str, Run]]] = {"ja": raw_ja, "zh": raw_zh, "en": raw_en}
#: The baseline each of ours is held against: like against like (text by text, kept or not).
BASELINE = {
    ("ja", "tokenize"): "raw",
    ("zh", "tokenize"): "raw",
    ("en", "tokenize"): "raw_each",
    ("ja", "batch"): "raw_keep",
    ("zh", "batch"): "raw_keep",
    ("en", "batch"): "raw_keep",
}


def tokenize_each(tokenizer: Any) -> Run:
    def run(texts: Sequence[str]) -> object:
        n = 0
        for text in texts:
            n += len(tokenizer.tokenize(text))
        return n

    return run


def measure(
    variants: dict[str, Callable[[Sequence[str]], object]], texts: Sequence[str], repeats: int
) -> dict[str, list[float]]:
    """CPU seconds of each variant per repeat; variants run in a new random order every repeat.

    CPU time, not wall time: on a shared machine a run's wall time mostly measures how long
    it waited for a core."""
    for run in variants.values():  # warm-up: caches, lazy loading
        run(texts)
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    rng = random.Random(0)
    for _ in range(repeats):
        rng.shuffle(order)
        for name in order:
            t0 = time.process_time()
            variants[name](texts)
            times[name].append(time.process_time() - t0)
    return times


def paired_overhead(ours: Sequence[float], raw: Sequence[float]) -> float:
    """Median over repeats of ours / raw of the same repeat, minus 1."""
    return statistics.median(o / r for o, r in zip(ours, raw, strict=True)) - 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--langs", nargs="+", default=["ja", "zh", "en"])
    parser.add_argument("--repeats", type=int, default=15, help="interleaved repeats")
    parser.add_argument("--ja-sentences", type=int, default=1000, help="Japanese sentences used")
    parser.add_argument("--copies", type=int, default=2, help="zh/en: times each sentence is used")
    args = parser.parse_args(argv)

    rows: list[tuple[str, str, int, float, str, str]] = []
    worst = float("-inf")
    for lang in args.langs:
        t0 = time.perf_counter()
        tok = word_tokenizers.get(lang)
        load = time.perf_counter() - t0
        if lang == "ja":
            texts = japanese_sentences(args.ja_sentences)
        else:
            texts = (ZH_SENTENCES if lang == "zh" else EN_SENTENCES) * args.copies
        variants: dict[str, Run] = {
            **RAW[lang](tok),
            "tokenize": tokenize_each(tok),
            "batch": tok.tokenize_batch,
        }
        times = measure(variants, texts, args.repeats)
        print(f"{lang}: {len(texts)} sentences, backend loaded in {load:.2f} s", file=sys.stderr)
        for name, seconds in times.items():
            rate = len(texts) / min(seconds)
            if name.startswith("raw"):
                rows.append((lang, name, len(texts), rate, "", ""))
                continue
            base = BASELINE[(lang, name)]
            overhead = paired_overhead(seconds, times[base])
            worst = max(worst, overhead)
            also = f"{paired_overhead(seconds, times['raw']):+.1%}" if name == "batch" else ""
            rows.append((lang, name, len(texts), rate, f"{overhead:+.1%} vs {base}", also))

    print(
        f"{'lang':<5} {'variant':<9} {'sentences':>9} {'sent/s (best)':>14} "
        f"{'overhead':>20} {'vs raw':>8}"
    )
    for lang, name, n, rate, overhead, also in rows:
        print(f"{lang:<5} {name:<9} {n:>9} {rate:>14,.0f} {overhead:>20} {also:>8}")
    verdict = "meets" if worst <= TARGET else "MISSES"
    print(f"worst overhead over the raw backend: {worst:+.1%} ({verdict} the {TARGET:.0%} target)")
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
