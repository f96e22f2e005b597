"""Shared test helpers: config paths and small detector inputs."""
import copy
import os.path as osp

from mmengine.config import Config

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_ROOT = osp.join(REPO_ROOT, 'configs')


def config_path(*parts):
    return osp.join(CONFIG_ROOT, *parts)


def load_config(*parts):
    return Config.fromfile(config_path(*parts))


def model_cfg(*parts):
    return copy.deepcopy(load_config(*parts).model)
