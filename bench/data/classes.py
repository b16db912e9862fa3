"""Class names and colours of every dataset, without numpy, torch or a dataset on disk (the catalog reads them).

synthetic_class_names(6)      # ["background", "red", "chartreuse", ...]: each class named after its cue hue
CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, TRAIN_ID_TO_LABEL_ID     # the 19 evaluated trainIds
VSPW_CLASSES                                                  # the 124 evaluated VSPW classes
"""

from __future__ import annotations

HUE_NAMES = (
    "red",
    "orange",
    "yellow",
    "chartreuse",
    "green",
    "spring",
    "cyan",
    "azure",
    "blue",
    "violet",
    "magenta",
    "rose",
)


def class_hue(k: int, num_classes: int) -> float:
    """Hue in [0, 1) of object class ``k >= 1``: evenly spaced, so classes are as far apart as possible
    (5 classes are 72 degrees apart, more than the +-18 degree hue jitter of the photometric augmentation)."""
    return (k - 1) / max(1, num_classes - 1)


def synthetic_class_names(num_classes: int) -> list[str]:
    """``["background", "red", "yellow", ...]``: each object class is named after its cue hue."""
    names = ["background"]
    for k in range(1, num_classes):
        name = HUE_NAMES[int(round(class_hue(k, num_classes) * 12)) % 12]
        names.append(name if name not in names else f"{name}{k}")
    return names


CITYSCAPES_CLASSES = [
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
]  # fmt: skip
# labelId of each trainId 0..18 (cityscapesscripts helpers/labels.py)
TRAIN_ID_TO_LABEL_ID = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
CITYSCAPES_PALETTE = [
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
]  # fmt: skip

# VSPW (Miao et al., CVPR 2021): mask value k = 1..124 is class k - 1 here, named as in the release's
# label_num_dic_final.json (0 "others" and 255 void are ignored; bench.data.vspw.vspw_lut)
VSPW_CLASSES = [
    "wall", "ceiling", "door", "stair", "ladder", "escalator", "Playground_slide", "handrail_or_fence", "window",
    "rail", "goal", "pillar", "pole", "floor", "ground", "grass", "sand", "athletic_field", "road", "path",
    "crosswalk", "building", "house", "bridge", "tower", "windmill", "well_or_well_lid", "other_construction", "sky",
    "mountain", "stone", "wood", "ice", "snowfield", "grandstand", "sea", "river", "lake", "waterfall", "water",
    "billboard_or_Bulletin_Board", "sculpture", "pipeline", "flag", "parasol_or_umbrella", "cushion_or_carpet",
    "tent", "roadblock", "car", "bus", "truck", "bicycle", "motorcycle", "wheeled_machine", "ship_or_boat", "raft",
    "airplane", "tyre", "traffic_light", "lamp", "person", "cat", "dog", "horse", "cattle", "other_animal", "tree",
    "flower", "other_plant", "toy", "ball_net", "backboard", "skateboard", "bat", "ball",
    "cupboard_or_showcase_or_storage_rack", "box", "traveling_case_or_trolley_case", "basket", "bag_or_package",
    "trash_can", "cage", "plate", "tub_or_bowl_or_pot", "bottle_or_cup", "barrel", "fishbowl", "bed", "pillow",
    "table_or_desk", "chair_or_seat", "bench", "sofa", "shelf", "bathtub", "gun", "commode", "roaster",
    "other_machine", "refrigerator", "washing_machine", "Microwave_oven", "fan", "curtain", "textiles", "clothes",
    "painting_or_poster", "mirror", "flower_pot_or_vase", "clock", "book", "tool", "blackboard", "tissue",
    "screen_or_television", "computer", "printer", "Mobile_phone", "keyboard", "other_electronic_product", "fruit",
    "food", "instrument", "train",
]  # fmt: skip
