// The CUDA backend's cost model (host code, tested on the CPU): the item split it chooses, and the
// tile shapes' packing rule it shares with the workspace.
#include "schedule/cost_model.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "kernels/tile_shapes.hpp"

namespace chunktree {
namespace {

using cost_model::cheapest_split;
using cost_model::SplitShape;

constexpr int kH200 = 132;
// Peak HBM in bytes a µs: the H200's, the cost model's fit, and the H100 SXM's (2619 MHz, 5120 bits),
// 1.47 times slower.
constexpr double kH200Hbm = cost_model::kFitMemoryBytesPerMicro;
constexpr double kH100Hbm = cost_model::peak_memory_bytes_per_micro(2619.0, 5120.0);

std::vector<SpanSize> private_spans(int sequences, std::int64_t tokens) { return std::vector<SpanSize>(static_cast<std::size_t>(sequences), SpanSize{1, tokens}); }

// Enough whole tiles to fill every SM several times: splitting only adds states to merge.
TEST(CostModel, ManyLongPrivateSpansStayWhole) {
  const SplitShape mha{32, 32, 128, 1, 64};
  EXPECT_EQ(cheapest_split(private_spans(32, 4096), mha, kH200), 0);  // 1024 tiles on 264 slots
}

// One sequence's 8 tiles would leave most SMs idle: the model cuts its KV into parts.
TEST(CostModel, AFewLongSpansAreSplitToFillTheGpu) {
  const SplitShape gqa{32, 8, 128, 1, 64};
  const std::int64_t split = cheapest_split(private_spans(1, 8192), gqa, kH200);
  EXPECT_GE(split, 64);
  EXPECT_LT(split, 8192);
  EXPECT_EQ(split & (split - 1), 0) << split << " is not a power of two";
}

// Wide shared spans on wgmma tiles (experiment 39's sweep on the H200): 256 whole tiles of a 4096-row
// 8K prompt take 1.94 rounds of the SMs and beat every split, whose tiles add starts and states; a
// 256-row 32K prompt's 64 whole tiles would hold half the SMs, so it is cut into at least 128.
TEST(CostModel, WideSharedSpansAreCutOnlyToFillTheSms) {
  const SplitShape group8{8, 1, 128, 1, 64};
  EXPECT_EQ(cheapest_split(std::vector<SpanSize>{{4096, 8192}}, group8, kH200), 0);
  const SplitShape mha{32, 32, 128, 1, 64};
  const std::int64_t split = cheapest_split(std::vector<SpanSize>{{256, 32768}}, mha, kH200);
  EXPECT_GE(split, 4096);
  EXPECT_LE(split, 16384);
}

// Beside private spans too (experiment 42), a prompt whose whole wgmma tiles are dealt onto the SMs
// within the time of the private tiles stays whole: speculative decoding's 4K prompt shared by 64
// sequences of 8 query tokens, and a 4096-row 8K prompt with 64-token suffixes.
TEST(CostModel, WholeWideSpansBesidePrivateOnesWhenTheirDealFits) {
  std::vector<SpanSize> spec{{64, 4096}};
  spec.resize(65, SpanSize{1, 8});
  EXPECT_EQ(cheapest_split(spec, SplitShape{32, 32, 128, 8, 64}, kH200), 0);
  std::vector<SpanSize> hydragen{{4096, 8192}};
  hydragen.resize(4097, SpanSize{1, 64});
  EXPECT_EQ(cheapest_split(hydragen, SplitShape{8, 1, 128, 1, 64}, kH200), 0);
}

// A decode batch's 4K prompt shared by 64 sequences of 32 q / 8 kv heads (256 query rows a kv head:
// two wgmma tiles a part) beside their one-token private tiles: cut in 8 parts (the power of two),
// its 128 wgmma tiles hold 128 SMs and the private tiles wait for them; in 6 parts of 768 (whole
// wgmma stages) 96 tiles leave 36 SMs to the private tiles (experiment 73, H100: 31.7 against
// 35.5 µs). A split between the powers of two is taken only where priced 1 % cheaper, and only
// beside private spans of at most one mma.sync stage.
TEST(CostModel, ASharedPromptLeavesSmsToThePrivateTilesBesideIt) {
  const SplitShape gqa{32, 8, 128, 1, 64};
  std::vector<SpanSize> decode{{64, 4096}};
  decode.resize(65, SpanSize{1, 20});
  const std::int64_t split = cheapest_split(decode, gqa, kH200);
  EXPECT_EQ(split, 768);
  EXPECT_EQ(split % kernels::kWgmmaStageTokens, 0);
  EXPECT_LT(cost_model::estimated_micros(decode, 768, gqa, kH200), 0.99 * cost_model::estimated_micros(decode, 512, gqa, kH200));
  // On 384-token chunks the parts stay whole chunks too.
  const std::int64_t chunked = cheapest_split(decode, SplitShape{32, 8, 128, 1, 384}, kH200);
  EXPECT_EQ(chunked % 384, 0) << chunked;
  // Beside 512-token private spans (gqa-llama3 b64_p8k) only the powers of two are tried: the even
  // cuts measured slower there than the model priced them.
  std::vector<SpanSize> longer_private{{64, 8192}};
  longer_private.resize(65, SpanSize{1, 512});
  const std::int64_t power = cheapest_split(longer_private, gqa, kH200);
  EXPECT_EQ(power & (power - 1), 0) << power;
}

// Short private spans of few query rows per kv head, more than one wave of them: their tiles pack
// four kv heads (kernels/tile_shapes.hpp), a quarter of the starts for the same steps, so the
// estimate falls with packing against the same spans on a GPU where one wave holds every tile.
TEST(CostModel, PackedKvHeadsCostAStartPerFourHeads) {
  const SplitShape drafts{32, 32, 128, 8, 64};  // 8 draft tokens per sequence, MHA
  const std::vector<SpanSize> spans = private_spans(256, 8);  // 8192 one-head tiles of one stage
  const double packed = cost_model::estimated_micros(spans, 0, drafts, kH200);
  // 8192 / 4 tiles of (start + one step: 32 positions of four heads, counted whole) over 264 slots.
  EXPECT_NEAR(packed, (2048 * (3.0 + 1.9)) / 264.0 + 0.1 * (3.0 + 1.9) + 2.0 * 256 * 8 * 32 * 128 * 4 / 3.0e6, 1.0);
  const SplitShape decode{32, 32, 128, 1, 64};
  // 256 one-head tiles: no queue, no packing, no tail; their work over the slots outlasts one tile alone.
  const std::vector<SpanSize> one_wave = private_spans(8, 64);
  EXPECT_NEAR(cost_model::estimated_micros(one_wave, 0, decode, kH200), 256 * (3.0 + 1.9) / 264.0 + 2.0 * 8 * 32 * 128 * 4 / 3.0e6, 0.01);
}

// Long private spans of a few sequences per kv head are cut into 128 tiles, one per SM: 256 tiles
// (one wave) cost more starts and states for the same steps, and 512 or more queue for the slots and
// pay the tail of their uneven last wave (experiment 62, session 28's sweep of the private preset:
// b1_g4_32k 48.8 µs at 2048 against 51.6 at 1024, b4_g4_16k 78.4 at 4096 against 80.1 at 2048,
// b64_g16_8k 136.2 whole against 147.6 at 2048).
TEST(CostModel, LongPrivateSpansAreCutIntoOneMmaSyncTilePerSm) {
  const SplitShape gqa4{32, 8, 128, 1, 64};
  EXPECT_EQ(cheapest_split(private_spans(1, 32768), gqa4, kH200), 2048);  // 128 tiles
  EXPECT_EQ(cheapest_split(private_spans(4, 16384), gqa4, kH200), 4096);  // 128 tiles
  EXPECT_EQ(cheapest_split(private_spans(64, 8192), SplitShape{32, 2, 128, 1, 64}, kH200), 0);  // 128 whole tiles
}

// On pages that interleave the kv heads (NHD) a tile alone on its SM streams no faster than a slot's
// share, so those spans fill both slots of every SM instead (experiment 68: session 31's ncu put
// b64_g16_8k's 128 whole tiles at 172 µs on NHD pages against 133 on head-major chunks).
TEST(CostModel, SpansOnPagesOfInterleavedKvHeadsFillBothSlots) {
  EXPECT_EQ(cheapest_split(private_spans(64, 8192), SplitShape{32, 2, 128, 1, 0, true}, kH200), 4096);  // 256 tiles
  EXPECT_EQ(cheapest_split(private_spans(4, 16384), SplitShape{32, 8, 128, 1, 0, true}, kH200), 2048);  // 256 tiles
  EXPECT_EQ(cheapest_split(private_spans(64, 16384), SplitShape{32, 1, 128, 1, 0, false}, kH200), 8192);  // one head: rows contiguous
}

// A prompt shared by 32 MHA sequences (32 query rows per kv head: mma.sync tiles) is cut into 128
// tiles, one per SM, each streaming with the HBM to spare; 256 tiles, two per SM, each stream a
// step at less than half that rate, and 64 leave SMs idle (experiment 60, session 27's sweep:
// 18.2 / 23.9 / 34.1 µs at 1K / 2K / 4K against 19.9 / 26.1 / 36.1 on 256 tiles).
TEST(CostModel, ShortSharedPromptsAreCutIntoOneMmaSyncTilePerSm) {
  const SplitShape mha{32, 32, 128, 1, 64};
  for (const std::int64_t tokens : {1024, 2048, 4096}) {
    EXPECT_EQ(cheapest_split(std::vector<SpanSize>{{32, tokens}}, mha, kH200), tokens / 4) << tokens;
  }
}

// The packing rule both the workspace and the cost model read (kernels/tile_shapes.hpp): only where
// one-head tiles queue; then one-stage items anywhere, and items to 512 tokens beside wgmma tiles
// while the packed tiles still queue; never past 16 query rows per kv head; the last tile of a
// head count that four does not divide keeps the rest.
TEST(CostModel, PackedKvHeadsOnlyWherePackingPays) {
  using kernels::mma_sync_heads_per_tile;
  using kernels::PackingContext;
  const PackingContext one_wave{264, true, kH200};
  const PackingContext queued{265, false, kH200};
  const PackingContext queued_beside_wgmma{265, true, kH200};
  const PackingContext packed_queue_beside_wgmma{4 * 264 + 1, true, kH200};
  EXPECT_EQ(mma_sync_heads_per_tile(8, 8, 32, one_wave), 1);
  EXPECT_EQ(mma_sync_heads_per_tile(8, 64, 32, queued), 4);
  EXPECT_EQ(mma_sync_heads_per_tile(8, 65, 32, queued), 1);
  EXPECT_EQ(mma_sync_heads_per_tile(8, 256, 32, queued_beside_wgmma), 1);
  EXPECT_EQ(mma_sync_heads_per_tile(8, 512, 32, packed_queue_beside_wgmma), 4);
  EXPECT_EQ(mma_sync_heads_per_tile(8, 513, 32, packed_queue_beside_wgmma), 1);
  EXPECT_EQ(mma_sync_heads_per_tile(16, 8, 32, queued), 4);
  EXPECT_EQ(mma_sync_heads_per_tile(17, 8, 32, queued), 1);
  EXPECT_EQ(mma_sync_heads_per_tile(1, 8, 3, queued), 3);
  EXPECT_EQ(mma_sync_heads_per_tile(1, 8, 1, queued), 1);
}

// A split is never below the chunk (min_split), and a GPU with more SMs is never estimated slower.
TEST(CostModel, SplitsRespectTheChunkAndMoreSmsNeverCostMore) {
  for (const std::int64_t chunk : {64, 128, 256}) {
    const SplitShape shape{32, 8, 128, 1, chunk};
    const std::int64_t split = cheapest_split(private_spans(2, 16384), shape, kH200);
    EXPECT_TRUE(split == 0 || split >= chunk) << split;
  }
  const SplitShape shape{32, 8, 128, 1, 64};
  const std::vector<SpanSize> spans{{64, 4096}, {1, 300}, {1, 20}};
  for (const std::int64_t split : {0, 64, 512}) {
    EXPECT_LE(cost_model::estimated_micros(spans, split, shape, 2 * kH200), cost_model::estimated_micros(spans, split, shape, kH200));
  }
}

// The estimate is summed in whole tiles and steps: it is the same, to the bit, whatever the order
// of the spans (equal neighbours are counted together; the same spans apart are not).
TEST(CostModel, EstimateDoesNotDependOnTheSpansOrder) {
  const SplitShape shape{32, 8, 128, 1, 64};
  const std::vector<SpanSize> together{{64, 4096}, {1, 300}, {1, 300}, {1, 300}, {1, 20}, {1, 20}, {3, 999}};
  const std::vector<SpanSize> apart{{1, 300}, {1, 20}, {64, 4096}, {1, 300}, {3, 999}, {1, 20}, {1, 300}};
  for (const std::int64_t split : {0, 64, 128, 512}) {
    EXPECT_EQ(cost_model::estimated_micros(together, split, shape, kH200), cost_model::estimated_micros(apart, split, shape, kH200)) << split;
  }
  EXPECT_EQ(cheapest_split(together, shape, kH200), cheapest_split(apart, shape, kH200));
}

// The plan cuts no item past kMaxItemTokens, and the model prices that cut: "whole" and any
// longer split cost what kMaxItemTokens does where spans are longer.
TEST(CostModel, PricesTheCutAtTheItemCap) {
  const SplitShape mha{32, 32, 128, 1, 64};
  const std::vector<SpanSize> spans = private_spans(256, kMaxItemTokens + 256);
  const double capped = cost_model::estimated_micros(spans, kMaxItemTokens, mha, kH200);
  EXPECT_EQ(cost_model::estimated_micros(spans, 0, mha, kH200), capped);
  EXPECT_EQ(cost_model::estimated_micros(spans, 2 * kMaxItemTokens, mha, kH200), capped);
  EXPECT_LT(cost_model::estimated_micros(private_spans(256, kMaxItemTokens), 0, mha, kH200), capped);
}

// A persistent grid deals tiles round robin. Equal tiles that do not fill the last round (1024 on
// 264 CTAs: 3.88 a CTA) are as even as any deal of them; a few longer tiles among a thousand short
// ones (np1024_ns768 of chunkattn-t3: 64 tiles of 6 steps, then 1024 of 4) give the CTAs that take the
// long ones a fifth tile as well, and one CTA per tile is the faster grid; one round is even.
TEST(CostModel, RoundRobinIsUnevenWhenTheLongTilesCtasGetAnExtraTile) {
  const std::int64_t ctas = 2 * kH200;
  const std::vector<std::int64_t> equal(1024, 16 * 64);  // KV positions of each tile
  EXPECT_TRUE(cost_model::round_robin_is_even(equal, 128, ctas));
  std::vector<std::int64_t> mixed(64, 6 * 64);
  mixed.insert(mixed.end(), 1024, 4 * 64);
  EXPECT_FALSE(cost_model::round_robin_is_even(mixed, 128, ctas));
  const std::vector<std::int64_t> one_round{512 * 64, 1, 1, 1};
  EXPECT_TRUE(cost_model::round_robin_is_even(one_round, 128, ctas));
  EXPECT_TRUE(cost_model::round_robin_is_even({}, 128, ctas));
}

// A replayed grid's CTAs claim their first tiles where the hardware would put some of them two to an
// SM while others idle and the tiles are long enough to lose more than the claim costs: the paged
// private rows of 128 tiles (b64_g32_16k: 8192 positions each) claim; the `small` rows (128 tiles,
// those past the first 66 one step each), 256 tiles (more than the SMs: some share either way), 60
// tiles (the hardware spreads them) and head dim 256 (one CTA per SM) do not.
TEST(CostModel, ClaimsFirstTilesOnlyWhereSharedSmsWouldCostMore) {
  const std::vector<std::int64_t> long_tiles(128, 8192);
  EXPECT_TRUE(cost_model::claims_first_tiles(long_tiles, 128, kH200, 2));
  EXPECT_FALSE(cost_model::claims_first_tiles(long_tiles, 256, kH200, 1));
  std::vector<std::int64_t> small(64, 128);
  small.insert(small.end(), 64, 64);
  EXPECT_FALSE(cost_model::claims_first_tiles(small, 128, kH200, 2));
  small[100] = 128;  // one tile past the first half of the SMs that streams two steps
  EXPECT_TRUE(cost_model::claims_first_tiles(small, 128, kH200, 2));
  EXPECT_FALSE(cost_model::claims_first_tiles(std::vector<std::int64_t>(256, 4096), 128, kH200, 2));
  EXPECT_FALSE(cost_model::claims_first_tiles(std::vector<std::int64_t>(60, 8192), 128, kH200, 2));
  EXPECT_FALSE(cost_model::claims_first_tiles({}, 128, kH200, 2));
}

// `tiles` mma.sync tiles of one 16-row group each (a decode row's GQA group of up to 16 q heads).
std::vector<std::int32_t> decode_rows(std::size_t tiles, std::int32_t rows = 8) { return std::vector<std::int32_t>(tiles, rows); }

// Where a plan has tiles of both kinds, the wgmma tiles get part of the SMs and the mma.sync tiles
// stream on the rest beside them (experiment 95): spec-decode's b256 with a 4096-token prompt on 512
// wgmma tiles and 264 private tokens on each of 8192 mma.sync tiles. More private work leaves the
// wgmma tiles fewer SMs; a plan of one kind has no partition.
TEST(CostModel, WgmmaTilesGetPartOfTheSmsBesideLongPrivateTiles) {
  const std::vector<std::int64_t> prompt(512, 4096);
  const int k264 = cost_model::wgmma_sms(prompt, std::vector<std::int64_t>(8192, 264), decode_rows(8192), 128, kH200, 2, kH200Hbm);
  EXPECT_GE(k264, 32);
  EXPECT_LE(k264, 100);
  const int k1024 = cost_model::wgmma_sms(prompt, std::vector<std::int64_t>(8192, 1024), decode_rows(8192), 128, kH200, 2, kH200Hbm);
  EXPECT_GE(k1024, 1);
  EXPECT_LT(k1024, k264);
  EXPECT_EQ(cost_model::wgmma_sms(prompt, {}, {}, 128, kH200, 2, kH200Hbm), 0);
  EXPECT_EQ(cost_model::wgmma_sms({}, std::vector<std::int64_t>(8192, 264), decode_rows(8192), 128, kH200, 2, kH200Hbm), 0);
  // A few long private tiles (48 of 32k positions) stream no faster on more SMs than they can use:
  // the wgmma tiles keep enough SMs to end within them.
  const int k_few = cost_model::wgmma_sms(std::vector<std::int64_t>(128, 4096), std::vector<std::int64_t>(48, 32768), decode_rows(48), 128, kH200, 2, kH200Hbm);
  EXPECT_GE(k_few, 16);
  EXPECT_LT(k_few, 128);
  // One wgmma tile beside a few short private ones: nothing to gain.
  EXPECT_EQ(cost_model::wgmma_sms(std::vector<std::int64_t>(1, 4096), std::vector<std::int64_t>(4, 64), decode_rows(4), 128, kH200, 2, kH200Hbm), 0);
}

// Experiment 99: tiles of more query rows stream a step slower where few SMs stream them, so the
// same private positions leave the wgmma tiles fewer SMs, or none. Experiment 97's sweep (H100): the
// hydragen rows' 8-row tiles ran 14-17 % faster split; spec-decode's 32-row tiles (eight drafts of
// four packed heads, or of a GQA group of four) ran 1-16 % slower at the SMs the model gave them.
TEST(CostModel, TilesOfMoreRowsLeaveTheWgmmaTilesFewerSms) {
  const std::vector<std::int64_t> hydragen_prompt(128, 4096);
  const std::vector<std::int64_t> hydragen_suffixes(2048, 512);
  EXPECT_GT(cost_model::wgmma_sms(hydragen_prompt, hydragen_suffixes, decode_rows(2048), 128, kH200, 2, kH200Hbm), 0);
  const std::vector<std::int64_t> spec_prompt(512, 4096);
  const std::vector<std::int64_t> gqa_drafts(2048, 264);
  EXPECT_GT(cost_model::wgmma_sms(spec_prompt, gqa_drafts, decode_rows(2048), 128, kH200, 2, kH200Hbm), 0);
  EXPECT_EQ(cost_model::wgmma_sms(spec_prompt, gqa_drafts, decode_rows(2048, 32), 128, kH200, 2, kH200Hbm), 0);
  EXPECT_EQ(cost_model::wgmma_sms(spec_prompt, std::vector<std::int64_t>(2048, 1056), decode_rows(2048, 32), 128, kH200, 2, kH200Hbm), 0);
}

// Experiment 106: on a card of slower HBM than the fit's, the mma.sync tiles' shared steps stream
// slower and slow the wgmma tiles beside them. spec-decode b256_mha_p4k_s264_q8 (512 wgmma tiles of
// the 4096-token prompt, 2048 mma.sync tiles of four packed heads' 264 draft positions and 32 rows)
// is not split on the H200 and split at k ~72 on the H100 (session 61's k sweep: 542 µs at k 72
// against 662 unsplit). A card that reports no memory clock, or a faster one, prices as the fit's.
TEST(CostModel, SlowerHbmSplitsTheSmsForLongPackedDrafts) {
  const std::vector<std::int64_t> prompt(512, 4096);
  const std::vector<std::int64_t> drafts(2048, 1056);
  EXPECT_EQ(cost_model::wgmma_sms(prompt, drafts, decode_rows(2048, 32), 128, kH200, 2, kH200Hbm), 0);
  const int k_h100 = cost_model::wgmma_sms(prompt, drafts, decode_rows(2048, 32), 128, kH200, 2, kH100Hbm);
  EXPECT_GE(k_h100, 64);
  EXPECT_LE(k_h100, 80);
  const std::vector<std::int64_t> hydragen_prompt(128, 4096);
  const std::vector<std::int64_t> hydragen_suffixes(2048, 512);
  for (const double unknown_or_faster : {0.0, 2.0 * kH200Hbm}) {
    EXPECT_EQ(cost_model::wgmma_sms(prompt, drafts, decode_rows(2048, 32), 128, kH200, 2, unknown_or_faster), 0);
    EXPECT_EQ(cost_model::wgmma_sms(hydragen_prompt, hydragen_suffixes, decode_rows(2048), 128, kH200, 2, unknown_or_faster),
              cost_model::wgmma_sms(hydragen_prompt, hydragen_suffixes, decode_rows(2048), 128, kH200, 2, kH200Hbm));
  }
}

// Experiments 98, 100 and 105: beside wgmma tiles an eager call claims its mma.sync tiles where any
// streams more than one stage, where each slot has three or more, or where the wgmma tiles leave at
// least half the SMs free; one-stage tiles at fewer a slot beside more wgmma tiles run one CTA per
// tile (spec-decode b64 s8: 512 tiles of 32 positions on 264 slots, beside 128 wgmma tiles).
TEST(CostModel, ClaimsLaterTilesUnlessFewOneStageTilesBesideManyWgmmaTiles) {
  // spec-decode b64 s8: 512 one-stage tiles beside 128 wgmma tiles, which leave 4 SMs free.
  EXPECT_FALSE(cost_model::claims_later_tiles(std::vector<std::int64_t>(512, 32), 128, kH200, 2));
  EXPECT_FALSE(cost_model::claims_later_tiles(std::vector<std::int64_t>(791, 64), 67, kH200, 2));
  EXPECT_TRUE(cost_model::claims_later_tiles(std::vector<std::int64_t>(792, 64), 128, kH200, 2));
  EXPECT_TRUE(cost_model::claims_later_tiles(std::vector<std::int64_t>(2048, 32), 512, kH200, 2));
  EXPECT_TRUE(cost_model::claims_later_tiles(std::vector<std::int64_t>(512, 32), 128, kH200, 1));  // d = 256: one CTA an SM
  // hydragen b512_p1k_s64: 512 one-stage tiles beside 64 wgmma tiles, which leave 68 SMs free.
  EXPECT_TRUE(cost_model::claims_later_tiles(std::vector<std::int64_t>(512, 64), 64, kH200, 2));
  EXPECT_TRUE(cost_model::claims_later_tiles(std::vector<std::int64_t>(512, 64), 66, kH200, 2));
  std::vector<std::int64_t> one_longer(512, 32);
  one_longer[0] = 65;
  EXPECT_TRUE(cost_model::claims_later_tiles(one_longer, 128, kH200, 2));
  EXPECT_TRUE(cost_model::claims_later_tiles(std::vector<std::int64_t>(512, 2048), 64, kH200, 2));  // gqa-llama3 b256
  EXPECT_FALSE(cost_model::claims_later_tiles({}, 16, kH200, 2));
}

}  // namespace
}  // namespace chunktree
